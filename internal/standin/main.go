// Command standin is a stand-in for skupper-router, for runtime tests on
// machines where the router image cannot be pulled and skrouterd is not
// installed. It is NOT a router: it reads the configuration the way the
// router image does ($QDROUTERD_CONF, or -c PATH as skrouterd takes it),
// checks that it is JSON and that every credential file its sslProfiles
// name can be read (expanding ${SSL_PROFILE_BASE_PATH} as the image's
// launch script does), prints one line saying what it saw (and appends it
// to $STANDIN_REPORT when set), and waits for
// SIGTERM. A site whose router id starts with "crash-" makes it exit 3, to
// test crash loops.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	conf := flag.String("c", os.Getenv("QDROUTERD_CONF"), "configuration file")
	flag.Parse()
	data, err := os.ReadFile(*conf)
	if err != nil {
		fmt.Println("standin: cannot read configuration:", err)
		os.Exit(1)
	}
	var entities [][2]json.RawMessage
	if err := json.Unmarshal(data, &entities); err != nil {
		fmt.Println("standin: configuration is not a router configuration:", err)
		os.Exit(1)
	}
	routerID, files := "", 0
	for _, e := range entities {
		var typ string
		var attrs map[string]any
		json.Unmarshal(e[0], &typ)
		json.Unmarshal(e[1], &attrs)
		switch typ {
		case "router":
			routerID, _ = attrs["id"].(string)
		case "sslProfile":
			for _, k := range []string{"caCertFile", "certFile", "privateKeyFile"} {
				p, ok := attrs[k].(string)
				if !ok {
					continue
				}
				p = os.ExpandEnv(p)
				if _, err := os.ReadFile(p); err != nil {
					fmt.Println("standin: cannot read credential:", err)
					os.Exit(2)
				}
				files++
			}
		}
	}
	line := fmt.Sprintf("standin: running uid=%d gid=%d router=%s site=%s config-sha256=%x credentials=%d\n",
		os.Getuid(), os.Getgid(), routerID, os.Getenv("SKUPPER_SITE_ID"), sha256.Sum256(data), files)
	fmt.Print(line)
	// where no journal keeps a service's output, tests read this file
	if report := os.Getenv("STANDIN_REPORT"); report != "" {
		if f, err := os.OpenFile(report, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.WriteString(line)
			f.Close()
		}
	}
	if strings.HasPrefix(routerID, "crash-") {
		fmt.Println("standin: crashing as the site name asks")
		os.Exit(3)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fmt.Println("standin: stopped")
}
