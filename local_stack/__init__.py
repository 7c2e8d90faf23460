"""A local AWS for the tests, the demo and the benchmarks: LocalStack without Docker, the real template deployed.

``server`` starts and stops LocalStack, ``aws`` deploys ``template.yaml`` into it,
``deploy`` does the same for a LocalStack started by hand or with docker-compose.
"""
