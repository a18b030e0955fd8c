"""Where mentions come from: platform webhooks, pollers and their payload mappings."""
