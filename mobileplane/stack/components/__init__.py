"""One module per stack component, each implementing :class:`base.Component`."""
