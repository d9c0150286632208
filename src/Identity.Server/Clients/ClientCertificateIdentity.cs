using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Identity.Server.Clients;

/// <summary>
/// Who a <c>tls_client_auth</c> client's certificate must name (RFC 8705 §2.1.2): exactly one of the subject DN, a
/// dNSName SAN or a uniformResourceIdentifier SAN. The chain itself is checked against the trusted CA bundle first.
/// </summary>
public sealed record ClientCertificateIdentity(
    [property: JsonPropertyName("tls_client_auth_subject_dn")] string? SubjectDn,
    [property: JsonPropertyName("tls_client_auth_san_dns")] string? SanDns,
    [property: JsonPropertyName("tls_client_auth_san_uri")] string? SanUri)
{
    /// <summary>The application property holding the registered identity, as RFC 8705 §2.1.2 client metadata.</summary>
    public const string Property = "tls_client_auth";

    private const string SubjectAlternativeNameOid = "2.5.29.17";

    public static ClientCertificateIdentity? From(ClientDefinition client) =>
        client.TlsClientAuthSubjectDn is null && client.TlsClientAuthSanDns is null && client.TlsClientAuthSanUri is null
            ? null
            : new(client.TlsClientAuthSubjectDn is { } dn ? Canonical(dn) : null, client.TlsClientAuthSanDns, client.TlsClientAuthSanUri);

    public static ClientCertificateIdentity? From(IReadOnlyDictionary<string, JsonElement> properties) =>
        properties.TryGetValue(Property, out var value) && value.ValueKind == JsonValueKind.Object
            ? value.Deserialize<ClientCertificateIdentity>()
            : null;

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this);

    /// <summary>The distinguished name as .NET prints it, so "CN=a, O=b" and "CN=a,O=b" register the same subject.</summary>
    public static string Canonical(string distinguishedName) => Canonical(new X500DistinguishedName(distinguishedName));

    private static string Canonical(X500DistinguishedName name) => name.Decode(X500DistinguishedNameFlags.UseCommas);

    public bool Matches(X509Certificate2 certificate)
    {
        if (SubjectDn is not null)
        {
            return string.Equals(Canonical(certificate.SubjectName), SubjectDn, StringComparison.Ordinal);
        }

        var san = certificate.Extensions[SubjectAlternativeNameOid];
        if (san is null)
        {
            return false;
        }

        // RFC 8705 §2.1.2: the registered value must be one of the certificate's SAN entries of that type.
        return SanDns is not null
            ? new X509SubjectAlternativeNameExtension(san.RawData).EnumerateDnsNames()
                .Any(name => string.Equals(name, SanDns, StringComparison.OrdinalIgnoreCase))
            : SanUri is not null && UriNames(san.RawData).Any(uri => string.Equals(uri, SanUri, StringComparison.Ordinal));
    }

    /// <summary>The uniformResourceIdentifier entries ([6] IA5String) of a GeneralNames sequence (RFC 5280 §4.2.1.6).</summary>
    private static List<string> UriNames(byte[] extension)
    {
        var uris = new List<string>();
        try
        {
            var names = new AsnReader(extension, AsnEncodingRules.DER).ReadSequence();
            var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
            while (names.HasData)
            {
                if (names.PeekTag() == uriTag)
                {
                    uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag));
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }
        }
        catch (AsnContentException)
        {
            // A malformed SAN names nobody.
        }

        return uris;
    }
}
