"""The Gradio app: one module per tab, each with a `build_*_tab()`. The only package that imports gradio."""
