// Command coredns is CoreDNS with only the plugins the stack's Corefile uses.
//
// CoreDNS's own main imports every plugin (github.com/coredns/coredns/core/plugin), and with
// them the SDKs of Azure, AWS, Google Cloud and Datadog: a cold build of it took over eight
// minutes here. The plugins register themselves when imported; the server and its directive
// order are CoreDNS's own (coremain, core/dnsserver), so this is CoreDNS, minus what it
// would never load.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
