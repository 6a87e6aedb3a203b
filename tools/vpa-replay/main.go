// Command vpa-replay drives the real Kubernetes VPA recommender's model and
// estimators (k8s.io/autoscaler/vertical-pod-autoscaler, pkg/recommender/
// model, logic and routines, at the version pinned in go.mod) with usage
// samples and OOM kills read from a CSV file, and prints the target, lower
// and upper bound per container over time, as CSV. It is the reference the
// simulator's `vpa-defaults` peer is checked against (docs/peers.md).
//
// Subcommands:
//
//	vpa-replay replay  [flags] INPUT.csv   usage/OOM rows → recommendations over time
//	vpa-replay gentd26 [flags] TRACE.csv.gz GenTD26 memory utilisation → replay input,
//	                                        converted the way `heatscaler simulate` does
//	vpa-replay compare [flags] VPA.csv PEER.csv
//	                                        relative differences of two recommendation
//	                                        series, summarised
//	vpa-replay frontier [flags] TRACE.csv.gz
//	                                        VPA's frontier on GenTD26: the closed loop
//	                                        under other values of its flags
//	vpa-replay version                      the VPA module version linked in
//
// The formats are in README.md.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

const vpaModule = "k8s.io/autoscaler/vertical-pod-autoscaler"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "replay":
		err = replayMain(os.Args[2:])
	case "gentd26":
		err = gentd26Main(os.Args[2:])
	case "compare":
		err = compareMain(os.Args[2:])
	case "frontier":
		err = frontierMain(os.Args[2:])
	case "version":
		fmt.Println(vpaVersion())
	case "-h", "-help", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "vpa-replay: unknown subcommand %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vpa-replay %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  vpa-replay replay  [flags] INPUT.csv|-      recommendations over time (CSV on stdout)
  vpa-replay gentd26 [flags] TRACE.csv[.gz]   GenTD26 trace → replay input (CSV on stdout)
  vpa-replay compare [flags] VPA.csv PEER.csv relative differences, summarised
  vpa-replay frontier [flags] TRACE.csv[.gz]  VPA's frontier (over-provisioning against OOM kills)
  vpa-replay version                          the VPA module version linked in
Run a subcommand with -h for its flags; formats in tools/vpa-replay/README.md.
`)
}

// vpaVersion is the version of the VPA module this binary was built with.
func vpaVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == vpaModule {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "unknown"
}
