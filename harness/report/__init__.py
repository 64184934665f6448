"""`ferbench report`: the results store → tidy pandas frames → Jinja-rendered tables."""
