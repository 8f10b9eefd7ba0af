package daemon

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the daemon's Prometheus metrics.
type metrics struct {
	reconciles  *prometheus.CounterVec
	patched     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	duration    prometheus.Histogram
	routerTime  prometheus.Histogram
	phases      *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	resources   *prometheus.GaugeVec
	events      *prometheus.CounterVec
	overflows   prometheus.Counter
	rescans     *prometheus.CounterVec
	watches     prometheus.GaugeFunc
	unwatched   prometheus.Gauge
	queueLength prometheus.GaugeFunc
	retries     prometheus.GaugeFunc
	namespaces  prometheus.Gauge
	// routerOps counts management operations sent to routers, written
	// the files passes wrote or removed: an unchanged site costs neither
	routerOps *prometheus.CounterVec
	written   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, watches, queue, retries func() float64) (*metrics, error) {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "site_controller_reconciles_total", Help: "Reconcile passes, by namespace.",
		}, []string{"namespace"}),
		patched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "site_controller_patched_reconciles_total", Help: "Reconcile passes that patched the pass before, by namespace: told which files changed, Listeners and Connectors only, they looked at nothing else.",
		}, []string{"namespace"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "site_controller_reconcile_errors_total", Help: "Reconcile passes that failed (retried with backoff), by namespace.",
		}, []string{"namespace"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "site_controller_reconcile_duration_seconds",
			Help:    "Duration of reconcile passes.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "site_controller_reconcile_phase_duration_seconds",
			Help:    "Duration of the steps of reconcile passes: read (input), render (the site, written), apply (runtime and router), status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"phase"}),
		routerTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "site_controller_router_operations_duration_seconds",
			Help:    "Time routers took over the management operations of one pass (passes that sent some).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "site_controller_last_successful_reconcile_timestamp_seconds", Help: "Unix time of the last successful reconcile, by namespace.",
		}, []string{"namespace"}),
		resources: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "site_controller_resources", Help: "Resources by namespace, kind and status (Pending, Ready, Error).",
		}, []string{"namespace", "kind", "status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "site_controller_watcher_events_total", Help: "File system events received, by operation.",
		}, []string{"op"}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "site_controller_watcher_overflows_total", Help: "Times the kernel event queue overflowed.",
		}),
		rescans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "site_controller_rescans_total", Help: "Full rescans, by reason (start, periodic, unwatched, overflow, watcher error, reload).",
		}, []string{"reason"}),
		watches: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "site_controller_watched_directories", Help: "Directories watched by the single inotify instance.",
		}, watches),
		unwatched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "site_controller_unwatched_directories", Help: "Directories that could not be watched (inotify watch limit): rescanned every 2s instead.",
		}),
		queueLength: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "site_controller_queue_length", Help: "Namespaces waiting for or in a reconcile.",
		}, queue),
		retries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "site_controller_scheduled_retries", Help: "Passes scheduled for later: retries with backoff, rechecks of starting routers and waiting listeners.",
		}, retries),
		namespaces: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "site_controller_namespaces", Help: "Namespaces known to the controller.",
		}),
		routerOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "site_controller_router_operations_total", Help: "Management operations (create, update, delete) sent to running routers, by namespace.",
		}, []string{"namespace"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "site_controller_files_written_total", Help: "Files written or removed by passes (router configuration, credentials, status files), by namespace.",
		}, []string{"namespace"}),
	}
	for _, c := range []prometheus.Collector{m.reconciles, m.patched, m.errors, m.duration, m.phases, m.routerTime, m.lastSuccess, m.resources, m.events,
		m.overflows, m.rescans, m.watches, m.unwatched, m.queueLength, m.retries, m.namespaces, m.routerOps, m.written} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}

// forget drops the series of a namespace that is gone.
func (m *metrics) forget(ns string) {
	m.reconciles.DeleteLabelValues(ns)
	m.patched.DeleteLabelValues(ns)
	m.errors.DeleteLabelValues(ns)
	m.lastSuccess.DeleteLabelValues(ns)
	m.routerOps.DeleteLabelValues(ns)
	m.written.DeleteLabelValues(ns)
	m.resources.DeletePartialMatch(prometheus.Labels{"namespace": ns})
}
