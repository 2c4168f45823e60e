// Package standard links in the modules that ship with Sluice; importing it
// for its side effects registers them all.
package standard

import (
	_ "github.com/sluice-im/sluice/modules/antispam/http"
	_ "github.com/sluice-im/sluice/modules/example"
	_ "github.com/sluice-im/sluice/modules/wasm"
)
