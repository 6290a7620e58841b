"""Jupyter panels for the workbench (ipywidgets). Depends on workbench, never the reverse.

    from widgets import Workbench
    Workbench()                      # the whole app: model, dataset, adapter, method, device, run, runs, chat

Every panel also works on its own: ModelPanel(), DatasetPanel(), AdapterPanel(), MethodPanel(),
DevicePanel(), RunPanel(cfg), LossPlot(run_dir), ProfileView(run_dir), RunsPanel(root), ChatPanel(root).
Nothing here imports torch: a run loads it when it starts.
"""

from widgets.adapter_panel import AdapterPanel
from widgets.app import Workbench
from widgets.chat_panel import ChatPanel
from widgets.dataset_panel import DatasetPanel
from widgets.device_panel import DevicePanel
from widgets.method_panel import MethodPanel
from widgets.model_panel import ModelPanel
from widgets.plots import LossPlot
from widgets.profile_view import ProfileView
from widgets.run_panel import RunPanel
from widgets.runs_panel import RunsPanel

__all__ = [
    "AdapterPanel",
    "ChatPanel",
    "DatasetPanel",
    "DevicePanel",
    "LossPlot",
    "MethodPanel",
    "ModelPanel",
    "ProfileView",
    "RunPanel",
    "RunsPanel",
    "Workbench",
]
