// A vCenter simulator for the release tests: govmomi's simulator package (Debian's
// golang-github-vmware-govmomi-dev) serving the SOAP SDK over HTTPS until SIGTERM.
//
//	vcsim -listen 127.0.0.1:8989 -username golden -password secret
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8989", "address to serve the SDK on")
	username := flag.String("username", "user", "the one user that may log in")
	password := flag.String("password", "pass", "its password")
	flag.Parse()

	model := simulator.VPX() // one datacenter DC0, cluster DC0_C0, datastore LocalDS_0, folders vm/host/...
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	model.Service.TLS = new(tls.Config)
	server := model.Service.NewServer()
	defer server.Close()
	fmt.Println(server.URL.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
