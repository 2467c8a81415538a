"""The toolbar that drives the state: frame slider (sequences), mode, iteration slider with step and play, joint
selector, heatmap opacity."""
from __future__ import annotations

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import QComboBox, QLabel, QSlider, QToolBar, QToolButton, QWidget

from app.state import AB_MODES, DISPLAY_MODES, StudioState
from core.joints import H36M17

PLAY_INTERVAL_MS = 600


class Controls(QToolBar):
    def __init__(self, state: StudioState, parent: QWidget):
        super().__init__("Controls", parent)
        self.state = state
        self.setObjectName("controls")
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_slider.setMinimumWidth(160)
        self.frame_slider.setTracking(False)  # a frame is loaded where the slider is released, not on the way
        self.frame_slider.setToolTip("frame of the sequence (Page Up / Page Down)")
        self.frame_slider.valueChanged.connect(state.request_frame)
        self.frame_label = QLabel()
        self.frame_actions = [self.addWidget(QLabel(" frame ")), self.addWidget(self.frame_slider),
                              self.addWidget(self.frame_label), self.addSeparator()]
        self.mode = QComboBox()
        self.mode.addItems(DISPLAY_MODES)
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.mode.setToolTip("calibrated: fused evidence and extrinsics; uncalibrated: no extrinsics, "
                             "weak-perspective cameras; both: calibrated solid, uncalibrated dashed / wireframe; "
                             "side by side: each camera's panel in both modes; A/B (after File > Compare): another "
                             "checkpoint's or iteration count's estimates, B, beside these, A")
        self.mode.currentTextChanged.connect(state.set_mode)
        self.addWidget(QLabel(" mode "))
        self.addWidget(self.mode)
        self.addSeparator()
        self.back = self._button("◀", "previous iteration (Left)", lambda: state.set_iteration(state.iteration - 1))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(220)
        self.slider.setPageStep(1)
        self.slider.valueChanged.connect(state.set_iteration)
        self.addWidget(self.slider)
        self.forward = self._button("▶", "next iteration (Right)", lambda: state.set_iteration(state.iteration + 1))
        self.play = self._button("Play", "play through the iterations (Space)", self.toggle_play)
        self.play.setCheckable(True)
        self.label = QLabel()
        self.label.setMinimumWidth(120)
        self.addWidget(self.label)
        self.addSeparator()
        self.joint = QComboBox()
        self.joint.addItems(["all joints"] + list(H36M17.names))
        self.joint.currentIndexChanged.connect(lambda i: state.select_joint(i - 1))
        self.addWidget(QLabel(" joint "))
        self.addWidget(self.joint)
        self.addSeparator()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(state.heat_opacity * 100))
        self.opacity.setMaximumWidth(90)
        self.opacity.setToolTip("opacity of the heatmap overlays")
        self.opacity.valueChanged.connect(lambda value: state.set_heat_opacity(value / 100))
        self.addWidget(QLabel(" heatmaps "))
        self.addWidget(self.opacity)
        self.timer = QTimer(self)
        self.timer.setInterval(PLAY_INTERVAL_MS)
        self.timer.timeout.connect(self.advance)
        for key, action in ((Qt.Key.Key_Left, self.back.click), (Qt.Key.Key_Right, self.forward.click),
                            (Qt.Key.Key_Space, self.play.click),
                            (Qt.Key.Key_Home, lambda: state.set_iteration(0)),
                            (Qt.Key.Key_End, lambda: state.set_iteration(state.max_iteration)),
                            (Qt.Key.Key_PageDown, lambda: self.step_frame(1)),
                            (Qt.Key.Key_PageUp, lambda: self.step_frame(-1))):
            QShortcut(QKeySequence(key), parent).activated.connect(action)
        state.traces_changed.connect(self.sync)
        state.iteration_changed.connect(self.sync)
        state.mode_changed.connect(self.sync)
        state.ab_changed.connect(self.list_modes)
        state.selected_joint_changed.connect(lambda j: self.joint.setCurrentIndex(j + 1))
        state.scene_changed.connect(self.sync_frame)
        self.sync()
        self.sync_frame()

    def list_modes(self) -> None:
        """The display modes, with the A/B ones while there is a B to compare with."""
        self.mode.blockSignals(True)
        self.mode.clear()
        self.mode.addItems(list(DISPLAY_MODES) + (list(AB_MODES) if self.state.ab_traces else []))
        self.mode.setCurrentText(self.state.mode)
        self.mode.blockSignals(False)

    def step_frame(self, delta: int) -> None:
        if self.state.scene is not None:
            self.state.request_frame(self.state.scene.sample.frame + delta)

    def sync_frame(self, *_args) -> None:
        """The frame slider shows the loaded frame; it is there only for sequences of more than one frame."""
        scene = self.state.scene
        count = scene.frame_count if scene else 1
        for action in self.frame_actions:
            action.setVisible(count > 1)
        if count > 1:
            frame = scene.sample.frame
            self.frame_slider.blockSignals(True)
            self.frame_slider.setRange(0, count - 1)
            self.frame_slider.setValue(frame)
            self.frame_slider.blockSignals(False)
            self.frame_label.setText(f" {scene.frame_names[frame]} ({frame + 1}/{count}) ")

    def _button(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        self.addWidget(button)
        return button

    def sync(self, *_args) -> None:
        """Show the state (never the other way round: widgets only call the state's setters)."""
        state = self.state
        self.slider.blockSignals(True)
        self.slider.setRange(0, state.max_iteration)
        self.slider.setValue(state.iteration)
        self.slider.blockSignals(False)
        self.mode.blockSignals(True)
        self.mode.setCurrentText(state.mode)
        self.mode.blockSignals(False)
        enabled = bool(state.traces)
        for widget in (self.slider, self.back, self.forward, self.play):
            widget.setEnabled(enabled)
        self.label.setText(f" iteration {state.iteration} / {state.max_iteration}" if enabled else " no estimate yet")

    def toggle_play(self) -> None:
        if self.play.isChecked():
            if self.state.iteration >= self.state.max_iteration:
                self.state.set_iteration(0)
            self.timer.start()
        else:
            self.timer.stop()

    def advance(self) -> None:
        if self.state.iteration >= self.state.max_iteration:
            self.play.setChecked(False)
            self.timer.stop()
        else:
            self.state.set_iteration(self.state.iteration + 1)
