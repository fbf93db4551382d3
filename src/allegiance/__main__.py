from allegiance.cli.main import app

app()
