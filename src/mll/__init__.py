"""mll: Model Label Learning."""
