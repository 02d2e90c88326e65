"""The reporting plugin: contact-center KPIs over the stored CDRs, Erlang C staffing, the HTML
report and the live wallboard. Definitions of every KPI: docs/kpis.md."""
