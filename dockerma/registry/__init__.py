"""The registry side: a small client over a transport, with auth and docker's credentials."""
