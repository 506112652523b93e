from conveyor.cli.main import app

app()
