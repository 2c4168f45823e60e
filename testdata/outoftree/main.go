// Command sluice-custom is Sluice with the standard modules and acme.Greeter.
package main

import (
	"github.com/sluice-im/sluice/cli"
	_ "github.com/sluice-im/sluice/modules/standard"

	_ "example.org/sluice-custom/greeter"
)

func main() { cli.Main() }
