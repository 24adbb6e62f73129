// Package serve runs a plugin's gRPC server the way the Pulumi engine expects of every plugin it
// starts: listen on a free port, print that port as the first line of stdout, serve until done.
package serve

import (
	"fmt"
	"os"

	"google.golang.org/grpc"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
)

// Run registers the plugin's services with register and serves them; it exits the process with
// a message on stderr if serving fails.
func Run(register func(*grpc.Server)) {
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			register(srv)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fatal: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "fatal: %v\n", err)
		os.Exit(1)
	}
}
