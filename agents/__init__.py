"""The glue: Faust app, topics, tables, agents, CLI and broker bootstrap over ``streams``."""
