// Package clusterprobe holds no code, only a test: a probe of what
// github.com/mna/redisc v1.4.0 gives against a real local Redis Cluster
// (see redistest.StartCluster), written to design flashsale's cluster
// transport. It pins down slot binding, pipelining on a bound connection
// (which serves every slot of its node, a call for another node failing
// alone with MOVED), MOVED and ASK as redisc.ParseRedir returns them,
// TRYAGAIN during a migration, NOSCRIPT per node and after a failover,
// what a killed master looks like before a Refresh, and what RetryConn can
// and cannot do.
// Nothing in the product imports it.
package clusterprobe
