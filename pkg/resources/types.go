// Package resources holds the skupper.io/v2alpha1 resource types (and the v1
// Secret) as this controller reads them from a namespace's input directory,
// with decoding that keeps file and line for every field and validation that
// collects every problem instead of stopping at the first.
//
// It never touches a file outside the paths it is asked to read, and it never
// writes anything.
package resources

// APIVersion is the only Skupper API version this controller accepts.
const APIVersion = "skupper.io/v2alpha1"

// Kinds this controller decodes.
const (
	KindSite                     = "Site"
	KindListener                 = "Listener"
	KindConnector                = "Connector"
	KindAttachedConnector        = "AttachedConnector"
	KindAttachedConnectorBinding = "AttachedConnectorBinding"
	KindRouterAccess             = "RouterAccess"
	KindLink                     = "Link"
	KindSecret                   = "Secret"
	KindAccessGrant              = "AccessGrant"
	KindAccessToken              = "AccessToken"
	KindMultiKeyListener         = "MultiKeyListener"
	KindCertificate              = "Certificate"
)

// knownUnsupported are Skupper kinds that exist but that this controller does
// not act on yet. They are reported as such instead of "unknown kind".
var knownUnsupported = map[string]string{
	"SecuredAccess": "SecuredAccess needs Kubernetes services and is not supported on this platform",
}

// ObjectMeta is the part of Kubernetes object metadata that matters here.
type ObjectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Generation  int64             `yaml:"generation"`
	// Fields that tools such as kubectl add; accepted and ignored.
	UID               string `yaml:"uid"`
	ResourceVersion   string `yaml:"resourceVersion"`
	CreationTimestamp string `yaml:"creationTimestamp"`
}

// TypeMeta and ObjectMeta together; embedded in every resource.
type Header struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   ObjectMeta `yaml:"metadata"`
	// Status as found in the input (for example copied from a cluster) is
	// accepted and ignored: the controller writes its own.
	Status ignored `yaml:"status"`
}

// ignored is a field whose content is accepted without inspection.
type ignored struct{}

// Site is the router of one namespace.
type Site struct {
	Header `yaml:",inline"`
	Spec   SiteSpec `yaml:"spec"`
}

type SiteSpec struct {
	ServiceAccount string            `yaml:"serviceAccount"`
	LinkAccess     string            `yaml:"linkAccess"`
	DefaultIssuer  string            `yaml:"defaultIssuer"`
	HA             bool              `yaml:"ha"`
	Edge           bool              `yaml:"edge"`
	Settings       map[string]string `yaml:"settings"`
}

// Listener binds a local host:port to connectors elsewhere by routing key.
type Listener struct {
	Header `yaml:",inline"`
	Spec   ListenerSpec `yaml:"spec"`
}

type ListenerSpec struct {
	RoutingKey       string            `yaml:"routingKey"`
	Host             string            `yaml:"host"`
	Port             int64             `yaml:"port"`
	TLSCredentials   string            `yaml:"tlsCredentials"`
	Type             string            `yaml:"type"`
	Observer         string            `yaml:"observer"`
	ExposePodsByName bool              `yaml:"exposePodsByName"`
	Settings         map[string]string `yaml:"settings"`
}

// Connector binds a local server to listeners elsewhere by routing key.
type Connector struct {
	Header `yaml:",inline"`
	Spec   ConnectorSpec `yaml:"spec"`
}

type ConnectorSpec struct {
	RoutingKey          string            `yaml:"routingKey"`
	Host                string            `yaml:"host"`
	Port                int64             `yaml:"port"`
	TLSCredentials      string            `yaml:"tlsCredentials"`
	UseClientCert       bool              `yaml:"useClientCert"`
	VerifyHostname      *bool             `yaml:"verifyHostname"`
	Type                string            `yaml:"type"`
	Selector            string            `yaml:"selector"`
	IncludeNotReadyPods bool              `yaml:"includeNotReadyPods"`
	ExposePodsByName    bool              `yaml:"exposePodsByName"`
	Settings            map[string]string `yaml:"settings"`
}

// AttachedConnector, in a namespace directory that may have no Site (a
// team's own), selects containers for the site of another namespace
// directory, spec.siteNamespace, where an AttachedConnectorBinding of the
// same name binds it to a routing key.
type AttachedConnector struct {
	Header `yaml:",inline"`
	Spec   AttachedConnectorSpec `yaml:"spec"`
}

type AttachedConnectorSpec struct {
	SiteNamespace       string            `yaml:"siteNamespace"`
	Port                int64             `yaml:"port"`
	Selector            string            `yaml:"selector"`
	TLSCredentials      string            `yaml:"tlsCredentials"`
	UseClientCert       bool              `yaml:"useClientCert"`
	Type                string            `yaml:"type"`
	IncludeNotReadyPods bool              `yaml:"includeNotReadyPods"`
	Settings            map[string]string `yaml:"settings"`
}

// AttachedConnectorBinding, in a site's namespace directory, binds the
// AttachedConnector of the same name in namespace directory
// spec.connectorNamespace to a routing key of the site.
type AttachedConnectorBinding struct {
	Header `yaml:",inline"`
	Spec   AttachedConnectorBindingSpec `yaml:"spec"`
}

type AttachedConnectorBindingSpec struct {
	ConnectorNamespace string            `yaml:"connectorNamespace"`
	RoutingKey         string            `yaml:"routingKey"`
	ExposePodsByName   bool              `yaml:"exposePodsByName"`
	Settings           map[string]string `yaml:"settings"`
}

// RouterAccess lets routers of other sites link to this one.
type RouterAccess struct {
	Header `yaml:",inline"`
	Spec   RouterAccessSpec `yaml:"spec"`
}

type RouterAccessSpec struct {
	Roles                   []RouterAccessRole `yaml:"roles"`
	GenerateTLSCredentials  bool               `yaml:"generateTlsCredentials"`
	Issuer                  string             `yaml:"issuer"`
	AccessType              string             `yaml:"accessType"`
	TLSCredentials          string             `yaml:"tlsCredentials"`
	BindHost                string             `yaml:"bindHost"`
	SubjectAlternativeNames []string           `yaml:"subjectAlternativeNames"`
	Settings                map[string]string  `yaml:"settings"`
}

type RouterAccessRole struct {
	Name string `yaml:"name"`
	Port int64  `yaml:"port"`
}

// Link connects this site's router to another site's RouterAccess.
type Link struct {
	Header `yaml:",inline"`
	Spec   LinkSpec `yaml:"spec"`
}

type LinkSpec struct {
	Endpoints      []Endpoint        `yaml:"endpoints"`
	TLSCredentials string            `yaml:"tlsCredentials"`
	Cost           int64             `yaml:"cost"`
	Settings       map[string]string `yaml:"settings"`
}

type Endpoint struct {
	Name  string `yaml:"name"`
	Host  string `yaml:"host"`
	Port  string `yaml:"port"`
	Group string `yaml:"group"`
}

// MultiKeyListener binds a local host:port to several routing keys, with a
// strategy choosing among them.
type MultiKeyListener struct {
	Header `yaml:",inline"`
	Spec   MultiKeyListenerSpec `yaml:"spec"`
}

type MultiKeyListenerSpec struct {
	Host              string            `yaml:"host"`
	Port              int64             `yaml:"port"`
	TLSCredentials    string            `yaml:"tlsCredentials"`
	RequireClientCert bool              `yaml:"requireClientCert"`
	Observer          string            `yaml:"observer"`
	Settings          map[string]string `yaml:"settings"`
	Strategy          MultiKeyStrategy  `yaml:"strategy"`
}

type MultiKeyStrategy struct {
	Priority *struct {
		RoutingKeys []string `yaml:"routingKeys"`
	} `yaml:"priority"`
	Weighted *struct {
		RoutingKeys map[string]int64 `yaml:"routingKeys"`
	} `yaml:"weighted"`
}

// Certificate asks the site for a credential: a CA (signing) kept in
// runtime/issuers/<name>, or a leaf issued by ca kept in runtime/certs/<name>.
type Certificate struct {
	Header `yaml:",inline"`
	Spec   CertificateSpec `yaml:"spec"`
}

type CertificateSpec struct {
	CA       string            `yaml:"ca"`
	Subject  string            `yaml:"subject"`
	Hosts    []string          `yaml:"hosts"`
	Client   bool              `yaml:"client"`
	Server   bool              `yaml:"server"`
	Signing  bool              `yaml:"signing"`
	Settings map[string]string `yaml:"settings"`
}

// AccessGrant lets other sites redeem tokens for links to this one; the
// daemon serves it from its grant server.
type AccessGrant struct {
	Header `yaml:",inline"`
	Spec   AccessGrantSpec `yaml:"spec"`
}

type AccessGrantSpec struct {
	RedemptionsAllowed int64             `yaml:"redemptionsAllowed"`
	ExpirationWindow   string            `yaml:"expirationWindow"`
	Code               string            `yaml:"code"`
	Issuer             string            `yaml:"issuer"`
	Settings           map[string]string `yaml:"settings"`
}

// AccessToken is redeemed at another site's grant server for a link.
type AccessToken struct {
	Header `yaml:",inline"`
	Spec   AccessTokenSpec `yaml:"spec"`
}

type AccessTokenSpec struct {
	URL      string            `yaml:"url"`
	Code     string            `yaml:"code"`
	CA       string            `yaml:"ca"`
	LinkCost int64             `yaml:"linkCost"`
	Settings map[string]string `yaml:"settings"`
}

// Secret is a core v1 Secret, used for link credentials.
type Secret struct {
	Header     `yaml:",inline"`
	Type       string            `yaml:"type"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Immutable  bool              `yaml:"immutable"`
}

// Object is any decoded resource.
type Object interface {
	header() *Header
}

func (h *Header) header() *Header { return h }

// Generation returns metadata.generation of a resource.
func Generation(o Object) int64 { return o.header().Metadata.Generation }
