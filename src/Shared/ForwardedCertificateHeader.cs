using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Identity.Shared;

/// <summary>
/// Reads the client certificate a TLS-terminating proxy forwards in a header, in the forms proxies write:
/// <list type="bullet">
/// <item>a URL-encoded PEM certificate: nginx's <c>$ssl_client_escaped_cert</c>, and ingress-nginx's <c>ssl-client-cert</c>
/// (<c>auth-tls-pass-certificate-to-upstream</c>), which is the same variable (a PEM left unescaped is read too);</item>
/// <item>Envoy's <c>x-forwarded-client-cert</c> (XFCC): <c>key=value</c> pairs separated by <c>;</c>, values with <c>,;=</c>
/// double-quoted, one element per proxy separated by <c>,</c>; the certificate is the URL-encoded PEM of <c>Cert</c>;</item>
/// <item>the base64 DER certificate (Azure's <c>X-ARR-ClientCert</c>, ASP.NET Core's certificate forwarding default).</item>
/// </list>
/// Anything else is refused with a <see cref="FormatException"/> that never repeats the header's content.
/// One parser for the authority (<c>Mtls:ForwardedCertificateHeader</c>) and the regional library
/// (<c>IdentityTokenValidation:ForwardedCertificateHeader</c>): each project compiles this file as an internal type,
/// because the regional library may reference neither the server nor Core (decision 0059-one-forwarded-certificate-parser).
/// </summary>
internal static class ForwardedCertificateHeader
{
    /// <summary>A PEM certificate is a few KB; Kestrel's own header limit (32 KB for all of them) bounds it anyway.</summary>
    private const int MaxLength = 16 * 1024;

    public static X509Certificate2 Parse(string value)
    {
        var text = value.Trim();
        if (text.Length is 0 or > MaxLength)
        {
            throw Malformed("is empty or longer than 16 KB");
        }

        // An escaped PEM begins with its "-----BEGIN" line (dashes are not escaped, or "%2D" if they are); base64 has
        // no '=' but at its end, no ';' and no '"'; an XFCC element begins with a key (By, Hash, Cert, Chain, Subject,
        // URI, DNS) and its '='.
        if (text[0] is '-' or '%')
        {
            return LoadPem(Uri.UnescapeDataString(text));
        }

        var der = new byte[text.Length * 3 / 4];
        return Convert.TryFromBase64String(text, der, out var written) ? LoadDer(der.AsSpan(0, written)) : FromXfcc(text);
    }

    private static X509Certificate2 FromXfcc(string header)
    {
        var elements = XfccElements(header);
        if (elements.Count != 1)
        {
            // With several elements (Envoy's APPEND_FORWARD), which one is the caller is a matter of trusting each hop:
            // only a proxy that replaces the header (SANITIZE_SET) is supported.
            throw Malformed("holds several XFCC elements; the proxy must replace the header (SANITIZE_SET), not append to it");
        }

        var pairs = elements[0];
        var cert = pairs.Where(p => p.Key.Equals("Cert", StringComparison.OrdinalIgnoreCase)).ToList();
        if (cert is not [{ Value.Length: > 0 } only])
        {
            throw Malformed("has no single Cert in its XFCC element");
        }

        var certificate = LoadPem(Uri.UnescapeDataString(only.Value));
        // Hash is the hex SHA-256 of the DER certificate: when present it must be the one of Cert.
        var hash = pairs.FirstOrDefault(p => p.Key.Equals("Hash", StringComparison.OrdinalIgnoreCase)).Value;
        if (hash is not null && !hash.Equals(Convert.ToHexString(SHA256.HashData(certificate.RawData)), StringComparison.OrdinalIgnoreCase))
        {
            certificate.Dispose();
            throw Malformed("has an XFCC Hash that is not the SHA-256 of its Cert");
        }

        return certificate;
    }

    /// <summary>The elements of an XFCC header, each a list of key/value pairs, quotes removed.</summary>
    private static List<List<KeyValuePair<string, string>>> XfccElements(string header)
    {
        var elements = new List<List<KeyValuePair<string, string>>>();
        var pairs = new List<KeyValuePair<string, string>>();
        var token = new StringBuilder();
        string? key = null;
        var quoted = false;

        void EndPair()
        {
            if (key is null)
            {
                throw Malformed("has an XFCC pair without '='");
            }

            pairs.Add(new(key.Trim(), token.ToString()));
            (key, token.Length) = (null, 0);
        }

        for (var i = 0; i < header.Length; i++)
        {
            var c = header[i];
            if (quoted)
            {
                if (c == '\\' && i + 1 < header.Length)
                {
                    token.Append(header[++i]);
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    token.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == '=' && key is null)
            {
                (key, token.Length) = (token.ToString(), 0);
            }
            else if (c is ';' or ',')
            {
                EndPair();
                if (c == ',')
                {
                    elements.Add(pairs);
                    pairs = [];
                }
            }
            else
            {
                token.Append(c);
            }
        }

        if (quoted)
        {
            throw Malformed("has an unterminated quoted XFCC value");
        }

        EndPair();
        elements.Add(pairs);
        return elements;
    }

    /// <summary>Exactly one PEM certificate (the client's own; proxies forward no chain in this form).</summary>
    private static X509Certificate2 LoadPem(string pem)
    {
        if (!PemEncoding.TryFind(pem, out var fields) || pem[fields.Label] is not "CERTIFICATE"
            || !string.IsNullOrWhiteSpace(pem[fields.Location.End..]))
        {
            throw Malformed("is not one PEM certificate");
        }

        var der = new byte[fields.DecodedDataLength];
        if (!Convert.TryFromBase64Chars(pem[fields.Base64Data], der, out var written))
        {
            throw Malformed("is not one PEM certificate");
        }

        return LoadDer(der.AsSpan(0, written));
    }

    private static X509Certificate2 LoadDer(ReadOnlySpan<byte> der)
    {
        try
        {
            return X509CertificateLoader.LoadCertificate(der);
        }
        catch (CryptographicException)
        {
            throw Malformed("holds no readable X.509 certificate");
        }
    }

    /// <summary>What is wrong, never the content: a certificate header is not something to copy into logs.</summary>
    private static FormatException Malformed(string what) => new($"The forwarded client certificate header {what}.");
}
