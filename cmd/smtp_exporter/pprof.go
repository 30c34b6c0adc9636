package main

import (
	"net/http"
	"net/http/pprof"
)

// handlePprof serves net/http/pprof on mux, and so behind the web config
// (TLS, basic auth) like every other page: the landing page links its heap
// and CPU profiles, as Prometheus's own exporters serve them. The handlers
// are named one by one: importing the package for its side effect would
// put them on http.DefaultServeMux, which nothing here serves.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
