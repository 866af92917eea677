pytest_plugins = ["tests.engine_fixtures", "tests.service_fixtures", "tests.api_fixtures"]
