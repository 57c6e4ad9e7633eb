package messages

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// OK is the persist reply, shaped like the OK packet the Node mysql driver
// returned to the original server, field for field and in the same order.
// Sent by the server after the commit and before "end"; on the wire.
type OK struct {
	FieldCount   int    `json:"fieldCount"`
	AffectedRows int64  `json:"affectedRows"`
	InsertID     int64  `json:"insertId"`
	ServerStatus int    `json:"serverStatus"`
	WarningCount int    `json:"warningCount"`
	Message      string `json:"message"`
	Protocol41   bool   `json:"protocol41"`
	ChangedRows  int64  `json:"changedRows"`
}

// NewOK builds the reply for an INSERT that affected rows rows, the first of
// them with id insertID (0 for a table without AUTO_INCREMENT).
func NewOK(affected, insertID int64) OK {
	ok := OK{AffectedRows: affected, InsertID: insertID, ServerStatus: 2, Protocol41: true}
	if affected > 1 {
		// What MySQL reports for a multi-row INSERT, as the Node driver shows it.
		ok.Message = "&Records: " + strconv.FormatInt(affected, 10) + "  Duplicates: 0  Warnings: 0"
	}
	return ok
}

// Encode writes the reply as JSON.stringify would: in field order, and with
// no HTML escaping of the message ("&Records").
func (ok OK) Encode() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(ok) // plain fields always encode
	return bytes.TrimRight(b.Bytes(), "\n")
}
