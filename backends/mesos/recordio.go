package mesos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxRecord caps one event of the subscription stream. An OFFERS event for
// a large cluster is the biggest; nothing legitimate comes near this.
const maxRecord = 32 << 20

// recordReader splits Mesos's RecordIO framing (docs/recordio.md):
//
//	record = record-size LF record-data ; record-size = 1*DIGIT
//
// The size is a decimal uint64 and is never 0. Empty lines before a size
// are skipped, as the doc's reference parser does; anything else that is
// not a digit is an error, since the stream can no longer be trusted.
type recordReader struct {
	br  *bufio.Reader
	max uint64
}

func newRecordReader(r io.Reader, max uint64) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

var errRecordFraming = errors.New("recordio: bad framing")

// next returns the next record. It returns io.EOF only at a record
// boundary; a stream cut inside a record is io.ErrUnexpectedEOF.
func (r *recordReader) next() ([]byte, error) {
	size, err := r.size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r.br, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// size reads "digits LF", skipping empty lines.
func (r *recordReader) size() (uint64, error) {
	var n uint64
	digits := 0
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && digits > 0 {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		switch {
		case b == '\n' && digits == 0:
			continue
		case b == '\n':
			if n == 0 {
				return 0, fmt.Errorf("%w: record of size 0", errRecordFraming)
			}
			return n, nil
		case b >= '0' && b <= '9':
			digits++
			d := uint64(b - '0')
			if n > (r.max-d)/10 {
				return 0, fmt.Errorf("%w: record larger than %d bytes", errRecordFraming, r.max)
			}
			n = n*10 + d
		default:
			return 0, fmt.Errorf("%w: byte %q in record size", errRecordFraming, b)
		}
	}
}
