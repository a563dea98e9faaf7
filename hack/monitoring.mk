# hack/monitoring.mk — checks of the Grafana dashboard and the Prometheus
# alert rules in deploy/monitoring/. Include it from the top-level Makefile
# after hack/tools/tools.mk, which provides $(PROMTOOL) and $(PROMETHEUS) as
# file targets that install Debian's prometheus package into the tools cache (~/.cache/htq/tools/bin):
#
#   include hack/tools/tools.mk
#   include hack/monitoring.mk
#
# The Go tests in test/observability find the same binaries through
# HTQ_PROMTOOL / HTQ_PROMETHEUS (then ~/.cache/htq/tools/bin, then $PATH).

MONITORING_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
MONITORING_DIR  := $(MONITORING_ROOT)/deploy/monitoring
GO              ?= go
MONITORING_ENV   = HTQ_PROMTOOL='$(PROMTOOL)' HTQ_PROMETHEUS='$(PROMETHEUS)'

.PHONY: monitoring-check monitoring-e2e

monitoring-check: $(PROMTOOL) ## promtool check + test the alert rules; check the Grafana dashboard (JSON, fields, every query parses)
	$(PROMTOOL) check rules '$(MONITORING_DIR)/alerts.rules.yaml'
	cd '$(MONITORING_DIR)' && $(PROMTOOL) test rules alerts_test.yaml
	cd '$(MONITORING_ROOT)' && $(MONITORING_ENV) $(GO) test -count=1 -run '^(TestDashboard|TestAlertRules|TestMetricNames)$$' ./test/observability/

monitoring-e2e: $(PROMTOOL) $(PROMETHEUS) ## real Prometheus + Redis + the three roles: metrics, dashboard queries, rules, logs (test/observability)
	@'$(MONITORING_ROOT)/scripts/ensure-redis.sh'
	cd '$(MONITORING_ROOT)' && $(MONITORING_ENV) $(GO) test -race -count=1 -timeout 5m ./test/observability/
