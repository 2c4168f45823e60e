// Command sluice is the Sluice homeserver with the modules that ship with it.
package main

import (
	"github.com/sluice-im/sluice/cli"
	_ "github.com/sluice-im/sluice/modules/standard"
)

func main() { cli.Main() }
