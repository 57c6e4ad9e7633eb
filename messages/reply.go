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
	// Duplicate marks the reply to a retry: every event id of the request
	// was stored already, with the same content, and nothing was stored
	// again. Sent only to clients that asked for reasons.
	Duplicate bool `json:"duplicate,omitempty"`
	// IDs, when set, are the ids of the request's documents in order, where
	// they do not follow from InsertID (a retry that found some stored).
	// Not on the wire.
	IDs []int64 `json:"-"`
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

// DocumentIDs returns the ids of the request's n documents in order: IDs
// when a retry set them, else insertId, insertId+1, ... (nil when the
// table gives no ids).
func (ok OK) DocumentIDs(n int) []int64 {
	if len(ok.IDs) == n {
		return ok.IDs
	}
	if ok.InsertID <= 0 || ok.AffectedRows != int64(n) {
		return nil
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = ok.InsertID + int64(i)
	}
	return ids
}
