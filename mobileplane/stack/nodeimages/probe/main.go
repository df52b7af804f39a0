// Command probe is the local stack's test-pod tool, one static binary:
//
//	probe serve ADDR            answer HTTP on ADDR: /healthz is "ok", / names the pod
//	probe get URL               GET URL; exit 0 and print the body only on status 200 (with
//	                            a mounted ServiceAccount, https trusts its CA and sends its
//	                            token: the way in-cluster clients reach the API server)
//	probe lookup NAME           resolve NAME (through the pod's DNS) and print its addresses
//	probe postgres HOST:PORT    PostgreSQL's SSLRequest and startup handshake: exit 0 when a
//	                            PostgreSQL server answers (an authentication request)
//
// The stack runs "serve" behind a Service and "get" in a readiness probe, so a pod is Ready
// only when Service DNS and Service routing work on the node.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fail("usage: probe serve ADDR | get URL | lookup NAME | postgres HOST:PORT")
	}
	arg := os.Args[2]
	switch os.Args[1] {
	case "serve":
		serve(arg)
	case "get":
		get(arg)
	case "lookup":
		addrs, err := net.LookupHost(arg)
		if err != nil {
			fail("lookup %s: %v", arg, err)
		}
		fmt.Println(addrs)
	case "postgres":
		postgres(arg)
	default:
		fail("unknown command %q", os.Args[1])
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func serve(addr string) {
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "mobileplane-probe %s\n", host)
	})
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fail("serve: %v", server.ListenAndServe())
}

const serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount/"

func get(url string) {
	client := &http.Client{Timeout: 3 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	if ca, err := os.ReadFile(serviceAccount + "ca.crt"); err == nil && strings.HasPrefix(url, "https:") {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		if token, err := os.ReadFile(serviceAccount + "token"); err == nil {
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fail("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	os.Stdout.Write(body)
}

// postgres speaks the first steps of PostgreSQL's protocol: an SSLRequest (answered "S" or
// "N"), then, without TLS, a StartupMessage, answered by an AuthenticationRequest ("R") or
// an ErrorResponse ("E"). Either answer comes from a PostgreSQL server and nothing else.
func postgres(addr string) {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		fail("connect %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	ssl := make([]byte, 8)
	binary.BigEndian.PutUint32(ssl[0:], 8)
	binary.BigEndian.PutUint32(ssl[4:], 80877103)
	if _, err := conn.Write(ssl); err != nil {
		fail("SSLRequest: %v", err)
	}
	reader := bufio.NewReader(conn)
	answer, err := reader.ReadByte()
	if err != nil || (answer != 'S' && answer != 'N') {
		fail("SSLRequest: not a PostgreSQL answer (%q, %v)", answer, err)
	}
	if answer == 'S' {
		fmt.Println("PostgreSQL offers TLS")
		return
	}
	params := []byte("user\x00probe\x00database\x00probe\x00\x00")
	startup := make([]byte, 8, 8+len(params))
	binary.BigEndian.PutUint32(startup[0:], uint32(8+len(params)))
	binary.BigEndian.PutUint32(startup[4:], 196608) // protocol 3.0
	if _, err := conn.Write(append(startup, params...)); err != nil {
		fail("StartupMessage: %v", err)
	}
	kind, err := reader.ReadByte()
	if err != nil || (kind != 'R' && kind != 'E') {
		fail("StartupMessage: not a PostgreSQL answer (%q, %v)", kind, err)
	}
	if kind == 'R' {
		fmt.Println("PostgreSQL asks for authentication")
	} else {
		fmt.Println("PostgreSQL answers with an error message")
	}
}
