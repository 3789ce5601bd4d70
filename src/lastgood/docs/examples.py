"""One example per reference page: a fragment of lastgood.yaml, shown as is and validated by
tests/test_reference_docs.py (so an example cannot drift from the models)."""

from __future__ import annotations

KINDS = {
    "lambda-alias": """
components:
  - name: api
    kind: lambda-alias
    function: shop-api-{env}
    alias: live
""",
    "ssm-parameter": """
components:
  - name: api-config
    kind: ssm-parameter
    parameters: [/shop/{env}/api/, /shop/{env}/feature-level]   # a trailing slash: every parameter under it
""",
    "secret": """
components:
  - name: db-credentials
    kind: secret
    secret: shop/{env}/db
""",
    "amplify-branch": """
components:
  - name: frontend
    kind: amplify-branch
    app_id: d1a2b3c4
    branch: main
""",
    "apigateway-stage": """
components:
  - name: public-api
    kind: apigateway-stage
    rest_api: shop-{env}       # or rest_api_id: a1b2c3d4e5
    stage: "{env}"
""",
    "stepfunctions-alias": """
components:
  - name: checkout
    kind: stepfunctions-alias
    state_machine: shop-checkout-{env}
    alias: live
""",
    "ecs-service": """
components:
  - name: web
    kind: ecs-service
    cluster: shop-{env}
    service: web
""",
    "dynamodb-table": """
components:
  - name: api
    kind: lambda-alias
    function: shop-api-{env}
    depends_on: [orders]         # the code is rolled back first, the table last
  - name: orders
    kind: dynamodb-table
    table: shop-{env}-orders
    pointer: {ssm_parameter: /shop/{env}/orders-table}
    checks: {min_items: 1}
""",
    "rds-instance": """
components:
  - name: database
    kind: rds-instance
    instance: shop-{env}
    pointer: {ssm_parameter: /shop/{env}/db-host}
    snapshot_on_record: true
""",
    "aurora-cluster": """
components:
  - name: database
    kind: aurora-cluster
    cluster: shop-{env}
    pointer: {secret_key: {secret: shop/{env}/db, key: host}}
""",
    "s3-prefix": """
components:
  - name: assets
    kind: s3-prefix
    bucket: shop-{env}-assets
    prefix: catalog/
""",
    "elbv2-listener": """
components:
  - name: web-traffic
    kind: elbv2-listener
    listener_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8e
""",
    "route53-weighted": """
components:
  - name: dns
    kind: route53-weighted
    hosted_zone_id: Z0123456789ABCDEFGHIJ
    record_name: api.shop.example.com
    record_type: A
""",
    "cloudformation-stack": """
components:
  - name: api-stack
    kind: cloudformation-stack
    stack: shop-api-{env}
    skip_resources: []
""",
    "codedeploy": """
components:
  - name: api-deployment
    kind: codedeploy
    application: shop-api
    deployment_group: shop-api-{env}
""",
    "sql-migrations": """
components:
  - name: schema
    kind: sql-migrations
    url: ${DATABASE_URL}
    tool: alembic
    alembic_ini: alembic.ini
    checks: {tables: [orders], foreign_keys: true}
""",
    "feature-flag": """
components:
  - name: flags
    kind: feature-flag
    http: {url: "https://flags.example.com/shop/{env}"}
    flags: [new-checkout]
    kill_switch: true
""",
    "command": """
components:
  - name: search-index
    kind: command
    record: ./scripts/index-version {env}
    rollback: ./scripts/restore-index {env} {value}
    timeout: 600
""",
    "amplify-env": """
components:
  - name: frontend-env
    kind: amplify-env
    app_id: d1abc2def3
    branch: main
    variables: [API_URL, STRIPE_PUBLIC_KEY]
    vault: /lastgood/{env}
""",
    "lambda-env": """
components:
  - name: api-env
    kind: lambda-env
    function: shop-api-{env}
    variables: [TABLE_NAME]
    alias: live
""",
    "security-group": """
components:
  - name: api-sg
    kind: security-group
    group_id: sg-0123456789abcdef0
    directions: [ingress, egress]
""",
}

SOURCES = {
    "cloudwatch": """
triggers:
  - name: api-errors
    cloudwatch: {namespace: AWS/Lambda, metric: Errors, stat: Sum, dimensions: {FunctionName: shop-api-{env}}}
    per: {namespace: AWS/Lambda, metric: Invocations, stat: Sum, dimensions: {FunctionName: shop-api-{env}}}
    when: "> 5%"
    for: 5m
    action: rollback
""",
    "prometheus": """
triggers:
  - name: checkout-errors
    prometheus: {url: "http://prometheus:9090", query: 'sum(rate(http_requests_total{code=~"5.."}[1m]))'}
    per: {query: 'sum(rate(http_requests_total[1m]))'}
    when: "> 2%"
    for: 3m
    action: rollback
""",
    "probe": """
triggers:
  - name: health
    probe: {url: "https://shop.example.com/health", rate: 1, measure: error-rate}
    when: "> 10%"
    period: 30s
    for: 1m
""",
    "logs_insights": """
triggers:
  - name: db-connection-errors
    logs_insights:
      log_groups: [/aws/lambda/shop-api-{env}]
      query: "filter @message like /connection refused/ | stats count(*) as failures"
      field: failures
    when: "> 10"
    for: 5m
    action: rollback
""",
    "log_events": """
triggers:
  - name: errors-in-logs
    log_events: {log_group: /aws/lambda/shop-api-{env}, pattern: ERROR}
    when: "> 20 per 5m"
    action: rollback
""",
    "codedeploy_hooks": """
triggers:
  - name: hook-failures
    codedeploy_hooks: {application: shop, deployment_group: shop-api-{env}}
    when: "> 0"
    severity: critical
    action: rollback
""",
}

CHANNELS = {
    "slack": """
notifications:
  channels:
    - slack: {webhook_url: "${SLACK_WEBHOOK_URL}"}
""",
    "sns": """
notifications:
  channels:
    - sns: {topic_arn: "arn:aws:sns:us-east-1:123456789012:incidents"}
""",
    "email": """
notifications:
  channels:
    - email: {smtp_host: smtp.example.com, smtp_port: 587, starttls: true, from: lastgood@example.com,
              to: [oncall@example.com], username: lastgood, password: "${SMTP_PASSWORD}"}
""",
    "webhook": """
notifications:
  channels:
    - webhook: {url: "https://hooks.example.com/lastgood", secret: "${WEBHOOK_SECRET}"}
""",
}

POLICY = {
    "decision": """
policy:
  decision:
    - {severity: critical, within: 1h, method: rollback}
    - {severity: high, method: planned-rollback}
    - {severity: medium, method: fix-forward, reason: "minor issues: fix forward"}
""",
    "approvals": """
policy:
  approvals:
    - {severity: critical, roles: [engineering-lead], count: 1, automation: true}
    - {severity: high, environments: [prod], roles: [senior-developer], count: 2}
""",
    "people": """
policy:
  people:
    - {name: alice, roles: [engineering-lead], email: alice@example.com, slack: U012AB3CD}
""",
    "escalation": """
policy:
  escalation:
    - {after: 15m, contact: [engineering-lead]}
    - {after: 5m, contact: [on-call], severity: critical, channels: [pager]}
notifications:
  channels: [{name: pager, sns: {topic_arn: "arn:aws:sns:us-east-1:123456789012:on-call"}}]
""",
    "targets": """
policy:
  targets: {mean_time_to_restore: 15m, success_rate: 95%, false_rollback_rate: 5%, data_loss_incidents: 0}
""",
    "drills": """
policy:
  drills: {allow_protected: false, redeploy: v41-bad, guard_for: 10m}
""",
}

VALIDATE = """
triggers:
  - {name: api-errors, when: "> 5", cloudwatch: {namespace: AWS/Lambda, metric: Errors}}
validate:
  checks:
    - name: health
      http: {url: "https://api-{env}.example.com/health", status: 200, body: '"ok"', latency: 3s, within: 2m}
    - name: e2e
      command: {argv: [pytest, tests/integration/test_e2e.py::test_health_check], timeout: 5m}
    - name: back-to-normal
      metric: {trigger: api-errors, quiet_for: 10m}
    - name: no-errors-in-logs
      logs: {log_groups: ["/aws/lambda/shop-api-{env}"], pattern: ERROR, max_matches: 0, within: 5m}
environments:
  staging:
    validate: {checks: [{name: health, http: {url: "https://api-staging.example.com/health"}}]}
"""

RUNBOOK = """
app: shop
state: sqlite:///.lastgood/state.db
environments:
  staging:
    aws: {region: us-east-1}
  prod:
    aws: {region: us-east-1}
    protected: true
    rto: 15m
guard: {watch: 30m}
components:
  - name: api
    kind: lambda-alias
    function: shop-api-{env}
"""
