// Package metricstest holds the helpers that tests of the metrics and of
// the listeners share: scrape a /metrics handler, read one series of the
// scrape, and lint the scrape with promtool.
package metricstest
