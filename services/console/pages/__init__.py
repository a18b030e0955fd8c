"""One module per screen: authorise, call the service clients, render."""
