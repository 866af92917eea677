# api_fixtures before service_fixtures, which imports it (else pytest cannot rewrite its asserts)
pytest_plugins = ["tests.engine_fixtures", "tests.api_fixtures", "tests.service_fixtures"]
