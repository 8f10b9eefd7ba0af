// Command backend is a stand-in workload for the selector tests: a TCP
// server that answers every connection with its own name, then echoes what
// it reads. It is not part of the controller; tests build it into a tiny
// image (internal/routertest.BackendImage) and start labelled containers
// of it on a network they create.
//
//	backend            serve on :$BACKEND_PORT (8080), as $BACKEND_NAME (else the host name)
//	backend -check     the health check: fails when $BACKEND_HEALTHY is "false"
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	check := flag.Bool("check", false, "run the health check and exit")
	flag.Parse()
	if *check {
		if os.Getenv("BACKEND_HEALTHY") == "false" {
			fmt.Println("unhealthy: BACKEND_HEALTHY=false")
			os.Exit(1)
		}
		fmt.Println("healthy")
		return
	}
	name := os.Getenv("BACKEND_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	port := os.Getenv("BACKEND_PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Println("backend:", err)
		os.Exit(1)
	}
	fmt.Println("backend", name, "serving on", ln.Addr())
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			w := bufio.NewWriter(c)
			fmt.Fprintln(w, name)
			w.Flush()
			io.Copy(c, c)
		}()
	}
}
