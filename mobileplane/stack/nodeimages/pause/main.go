// Command pause holds a pod's namespaces as its sandbox container, like Kubernetes' own
// pause image: it waits for SIGINT or SIGTERM, and reaps orphaned children meanwhile (it is
// PID 1 of pods that share their process namespace). Built by the local stack from source,
// since no container registry is reachable to pull registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
