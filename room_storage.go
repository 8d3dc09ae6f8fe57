package party

import (
	"errors"
	"fmt"

	"party/storage"
)

// Storage returns the room's key-value storage (PartyKit's room.storage),
// from the Host's Storage provider. It is opened before OnStart runs (a room
// whose storage cannot be opened fails to start) and closed when the room is
// dropped; its data outlives the room. Before the room has started, Storage
// returns nil. Safe to call from any goroutine.
//
// The room's alarm is not in its Storage: use [Room.SetAlarm]. The returned
// Storage's Close returns an error, since the room owns the handle.
func (r *Room) Storage() storage.Storage {
	r.life.Lock()
	defer r.life.Unlock()
	if r.store == nil {
		return nil // a nil storage.Storage, not a nil roomStorage in one
	}
	return r.storeView
}

// roomStorage is the view of a room's Storage handed to its Server.
type roomStorage struct{ storage.Storage }

func (roomStorage) Close() error {
	return errors.New("party: a room's Storage is closed by the Host when it drops the room")
}

// openedStorage returns the room's Storage handle, or nil before the room
// has opened it.
func (r *Room) openedStorage() storage.Storage {
	r.life.Lock()
	defer r.life.Unlock()
	return r.store
}

// openStorage opens the room's Storage, once, and schedules the alarm kept
// for it (set before the room was last dropped, or before a restart). The
// caller holds the turn.
func (r *Room) openStorage() error {
	if r.openedStorage() != nil {
		return nil
	}
	provider, alarms := r.host.stores()
	st, err := provider.Open(r.key.party, r.key.id)
	if err != nil {
		return fmt.Errorf("party: opening the room's storage: %w", err)
	}
	at, err := alarms.Alarm(r.key.party, r.key.id)
	if err != nil {
		st.Close()
		return fmt.Errorf("party: reading the room's alarm: %w", err)
	}
	r.life.Lock()
	r.store, r.storeView = st, roomStorage{st}
	r.life.Unlock()
	if !at.IsZero() {
		r.alarmMu.Lock()
		r.scheduleAlarm(at)
		r.alarmMu.Unlock()
	}
	return nil
}

// stores returns the Host's storage provider and alarm store, chosen once:
// Host.Storage, which keeps the alarms too if it is an AlarmStore, or a
// MemoryStore of the Host's own for what it does not provide.
func (h *Host) stores() (storage.Provider, storage.AlarmStore) {
	h.storesOnce.Do(func() {
		memory := func() *storage.MemoryStore {
			if h.memStore == nil {
				h.memStore = storage.NewMemoryStore()
			}
			return h.memStore
		}
		h.provider = h.Storage
		if h.provider == nil {
			h.provider = memory()
		}
		var ok bool
		if h.alarmStore, ok = h.provider.(storage.AlarmStore); !ok {
			h.alarmStore = memory()
		}
	})
	return h.provider, h.alarmStore
}
