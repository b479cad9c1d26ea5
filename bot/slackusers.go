package bot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"
)

// PostAsync sends a new message in its channel's turn and returns at
// once; a message that can't be delivered is logged. It is for lines
// nobody waits on, like the audit channel's.
func (s *Slack) PostAsync(channel, text string) {
	s.enqueue(&op{kind: opPost, channel: channel, text: text})
}

// UserEmail is the e-mail address of a Slack user's profile (users.info;
// the app needs the users:read.email scope). It is how a user is found in
// Okta when they have not signed in.
func (s *Slack) UserEmail(ctx context.Context, user string) (string, error) {
	u, err := s.api.GetUserInfoContext(ctx, user)
	if err != nil {
		return "", fmt.Errorf("slack: users.info %s: %w", user, err)
	}
	if u.Profile.Email == "" {
		return "", fmt.Errorf("slack: users.info %s: no e-mail address (is the users:read.email scope granted?)", user)
	}
	return u.Profile.Email, nil
}

// OpenView opens a modal dialog for the user whose click or command gave
// triggerID; Slack accepts a trigger once, within three seconds.
func (s *Slack) OpenView(ctx context.Context, triggerID string, view slack.ModalViewRequest) error {
	if _, err := s.api.OpenViewContext(ctx, triggerID, view); err != nil {
		return fmt.Errorf("slack: views.open: %w", err)
	}
	return nil
}
