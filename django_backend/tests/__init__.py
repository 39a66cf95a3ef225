"""Support code for the test suites and the benchmark; the tests themselves live beside their
app (apps/*/tests), in tests_e2e and in tests_production."""
