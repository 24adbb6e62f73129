// Command pulumi-tfgen-bridged writes the Pulumi package schema of a bridged provider:
//
//	BRIDGED_PROVIDER=tls pulumi-tfgen-bridged schema --out DIR
package main

import (
	"fmt"
	"os"

	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"consulpulumi/bridged"
)

func main() {
	name := os.Getenv("BRIDGED_PROVIDER")
	info, ok := bridged.ByName(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "BRIDGED_PROVIDER must be tls or random, not %q\n", name)
		os.Exit(2)
	}
	pftfgen.Main(name, info)
}
