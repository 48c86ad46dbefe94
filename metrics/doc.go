// Package metrics will hold the catalog of every Prometheus metric deflectd
// exports, checked against the code, the docs, the dashboard and the alert
// rules.
//
// It is empty until the ops-surface issue lands. Until then each component
// registers its own metrics on the Registerer it is given (see ari).
package metrics
