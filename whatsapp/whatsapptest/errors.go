package whatsapptest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// metaCode is one row of Meta's error-code table: the HTTP status Meta
// answers with, the title it puts in the message ("(#code) title"), and the
// default error_data.details.
type metaCode struct {
	status  int
	title   string
	details string
}

// codes is the subset of Meta's error-code reference the fake speaks. Codes
// not listed answer 400 with a generic title.
var codes = map[int]metaCode{
	0:      {http.StatusUnauthorized, "AuthException", "We were unable to authenticate the app user."},
	1:      {http.StatusBadRequest, "API Unknown", "Invalid request or possible server error."},
	2:      {http.StatusServiceUnavailable, "API Service", "Temporary due to downtime or due to being overloaded."},
	3:      {http.StatusInternalServerError, "API Method", "Capability or permissions issue."},
	4:      {http.StatusTooManyRequests, "Too many API calls", "The app has reached its API call rate limit."},
	10:     {http.StatusForbidden, "Permission Denied", "Permission is either not granted or has been removed."},
	33:     {http.StatusBadRequest, "Parameter value is not valid", "The business phone number has been deleted."},
	100:    {http.StatusBadRequest, "Invalid parameter", ""},
	190:    {http.StatusUnauthorized, "Access token has expired", ""},
	200:    {http.StatusForbidden, "API Permission", "Permission is either not granted or has been removed."},
	368:    {http.StatusForbidden, "Temporarily blocked for policies violations", "The WhatsApp Business Account associated with the app has been restricted or disabled for violating a platform policy."},
	80007:  {http.StatusTooManyRequests, "Rate limit issues", "The WhatsApp Business Account has reached its rate limit."},
	130429: {http.StatusTooManyRequests, "Rate limit hit", "Cloud API message throughput has been reached."},
	130472: {http.StatusBadRequest, "User's number is part of an experiment", "Message was not sent as part of an experiment."},
	131000: {http.StatusInternalServerError, "Something went wrong", "Message failed to send due to an unknown error."},
	131005: {http.StatusForbidden, "Access denied", "Permission is either not granted or has been removed."},
	131008: {http.StatusBadRequest, "Required parameter is missing", "The request is missing a required parameter."},
	131009: {http.StatusBadRequest, "Parameter value is not valid", "One or more parameter values are invalid."},
	131016: {http.StatusInternalServerError, "Service unavailable", "A service is temporarily unavailable."},
	131021: {http.StatusBadRequest, "Recipient cannot be sender", "Sender and recipient phone number is the same."},
	131026: {http.StatusBadRequest, "Message undeliverable", "Unable to deliver message."},
	131030: {http.StatusBadRequest, "Recipient phone number not in allowed list", "Recipient phone number not in allowed list."},
	131031: {http.StatusForbidden, "Account has been locked", "Business Account locked."},
	131047: {http.StatusBadRequest, "Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
	131048: {http.StatusTooManyRequests, "Spam rate limit hit", "Message failed to send because there are restrictions on how many messages can be sent from this phone number. This may be because too many previous messages were blocked or flagged as spam."},
	131049: {http.StatusBadRequest, "This message was not delivered to maintain healthy ecosystem engagement.", "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},
	131050: {http.StatusBadRequest, "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.", "The user has stopped marketing messages."},
	131051: {http.StatusBadRequest, "Unsupported message type", "Message type is not currently supported."},
	131056: {http.StatusTooManyRequests, "(Business Account, Consumer Account) pair rate limit hit", "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."},
	131057: {http.StatusInternalServerError, "Account in maintenance mode", "Business Account is in maintenance mode."},
	132000: {http.StatusBadRequest, "Number of parameters does not match the expected number of params", "The number of variable parameter values included in the request did not match the number of variable parameters defined in the template."},
	132001: {http.StatusNotFound, "Template name does not exist in the translation", "The template does not exist in the specified language or the template has not been approved."},
	132005: {http.StatusBadRequest, "Translated text too long", "Translated text is too long."},
	132007: {http.StatusBadRequest, "Template Format Character Policy Violated", "Template content violates a WhatsApp policy."},
	132012: {http.StatusBadRequest, "Parameter format does not match format in the created template", "Variable parameter values formatted incorrectly."},
	132015: {http.StatusBadRequest, "Template is Paused", "Template is paused due to low quality so it cannot be sent in a template message."},
	132016: {http.StatusBadRequest, "Template is Disabled", "Template has been paused too many times due to low quality and is now permanently disabled."},
	132018: {http.StatusBadRequest, "There was an issue with the parameters in your template.", "Param text cannot have new-line/tab characters or more than 4 consecutive spaces."},
	133010: {http.StatusBadRequest, "Account not registered", "The phone number is not registered on the WhatsApp Business Platform."},
	135000: {http.StatusBadRequest, "Generic user error", "Message failed to send because of an unknown error with your request parameters."},
}

// HTTPStatus returns the HTTP status the fake (and, per Meta's error-code
// reference, the real API) answers an error code with. Codes 200-299 are
// 403; codes the fake does not know are 400.
func HTTPStatus(code int) int {
	if c, ok := codes[code]; ok {
		return c.status
	}
	if code >= 200 && code <= 299 {
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// apiError is Meta's error object, in the order Meta writes its keys.
type apiError struct {
	Message      string     `json:"message"`
	Type         string     `json:"type"`
	Code         int        `json:"code"`
	ErrorSubcode int        `json:"error_subcode,omitempty"`
	IsTransient  bool       `json:"is_transient,omitempty"`
	ErrorData    *errorData `json:"error_data,omitempty"`
	FBTraceID    string     `json:"fbtrace_id"`
}

type errorData struct {
	MessagingProduct string `json:"messaging_product"`
	Details          string `json:"details"`
}

// failure is a refused request: the status and Meta's error object, or a
// bare status when noBody is set.
type failure struct {
	status int
	err    apiError
	noBody bool
}

// metaError builds the error Meta answers for code. details replaces the
// table's default when set. WhatsApp's own codes (13xxxx and the account
// codes) carry error_data; Graph's generic codes do not.
func metaError(code int, details string) *failure {
	c, ok := codes[code]
	if !ok {
		c = metaCode{status: HTTPStatus(code), title: "Unknown error"}
	}
	if details == "" {
		details = c.details
	}
	f := &failure{status: c.status, err: apiError{
		Message: fmt.Sprintf("(#%d) %s", code, c.title),
		Type:    "OAuthException",
		Code:    code,
	}}
	switch {
	case code == 190:
		// Graph's token errors have no "(#190)" prefix and no error_data.
		f.err.Message = "Invalid OAuth access token."
	case code == 2:
		f.err.Message = "An unexpected error has occurred. Please retry your request later."
		f.err.IsTransient = true
	case code >= 130000 || code == 368 || code == 80007 || code == 33:
		f.err.ErrorData = &errorData{MessagingProduct: "whatsapp", Details: details}
	case code == 100 && details != "":
		f.err.ErrorData = &errorData{MessagingProduct: "whatsapp", Details: details}
	}
	return f
}

// paramError is Graph's "(#100)" error for a malformed request body, with
// Graph's own wording in the message.
func paramError(message string) *failure {
	return &failure{status: http.StatusBadRequest, err: apiError{
		Message: "(#100) " + message,
		Type:    "OAuthException",
		Code:    100,
	}}
}

// unsupportedRequest is Graph's answer for a path or object that does not
// exist (an unknown phone number id, a wrong method).
func unsupportedRequest(method, id string) *failure {
	return &failure{status: http.StatusBadRequest, err: apiError{
		Message: fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
			strings.ToLower(method), id),
		Type:         "GraphMethodException",
		Code:         100,
		ErrorSubcode: 33,
	}}
}

// encode returns the response body of f, {"error":{...}}.
func (f *failure) encode() []byte {
	b, err := json.Marshal(struct {
		Error apiError `json:"error"`
	}{f.err})
	if err != nil {
		panic("whatsapptest: encoding an error object: " + err.Error())
	}
	return b
}
