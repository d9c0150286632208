using System.Buffers.Text;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Identity.Region.Validation;

/// <summary>What the binding check found.</summary>
internal enum BindingVerdict
{
    /// <summary>The token is bound to the caller's certificate.</summary>
    Bound,

    /// <summary>The token carries no confirmation and the API accepts bearer tokens.</summary>
    Unbound,

    /// <summary>The token carries no confirmation and the API requires bound tokens.</summary>
    UnboundRefused,

    /// <summary>Bound, but the caller presented no certificate.</summary>
    NoCertificate,

    /// <summary>Bound to another certificate than the caller's.</summary>
    OtherCertificate,

    /// <summary>A confirmation this API cannot check (e.g. DPoP's <c>jkt</c>), or a malformed one.</summary>
    UnknownConfirmation,
}

/// <summary>
/// RFC 8705 §3: a token whose <c>cnf</c> claim carries <c>x5t#S256</c> is good only in the hands of the client holding
/// that certificate, so the resource server compares the SHA-256 of the certificate presented on the call (§3.1)
/// with it.
/// </summary>
internal static class CertificateBinding
{
    public const string ConfirmationClaim = "cnf";
    public const string ThumbprintMember = "x5t#S256";

    /// <param name="thumbprint">
    /// Receives the SHA-256 of <paramref name="certificate"/> when the check computed it (the verdict is
    /// <see cref="BindingVerdict.Bound"/> or <see cref="BindingVerdict.OtherCertificate"/>), so that the chain check
    /// that follows on the same call keys its cache with it instead of hashing the certificate again.
    /// </param>
    public static BindingVerdict Check(ClaimsIdentity? token, X509Certificate2? certificate, bool requireBinding, Span<byte> thumbprint)
    {
        var confirmation = token?.FindFirst(ConfirmationClaim)?.Value;
        if (confirmation is null)
        {
            return requireBinding ? BindingVerdict.UnboundRefused : BindingVerdict.Unbound;
        }

        Span<byte> expected = stackalloc byte[SHA256.HashSizeInBytes];
        if (!TryReadThumbprint(confirmation, expected))
        {
            return BindingVerdict.UnknownConfirmation;
        }

        if (certificate is null)
        {
            return BindingVerdict.NoCertificate;
        }

        SHA256.HashData(certificate.RawDataMemory.Span, thumbprint);
        return CryptographicOperations.FixedTimeEquals(expected, thumbprint) ? BindingVerdict.Bound : BindingVerdict.OtherCertificate;
    }

    /// <summary>The base64url SHA-256 thumbprint in <c>{"x5t#S256":"..."}</c>, decoded into <paramref name="thumbprint"/>.</summary>
    private static bool TryReadThumbprint(string confirmation, Span<byte> thumbprint)
    {
        try
        {
            var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(confirmation));
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isThumbprint = reader.ValueTextEquals(ThumbprintMember);
                if (!reader.Read())
                {
                    return false;
                }

                if (isThumbprint)
                {
                    return reader.TokenType == JsonTokenType.String
                        && Base64Url.DecodeFromChars(reader.GetString(), thumbprint, out _, out var written) == System.Buffers.OperationStatus.Done
                        && written == SHA256.HashSizeInBytes;
                }

                reader.Skip();
            }

            return false;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public static string Describe(BindingVerdict verdict) => verdict switch
    {
        BindingVerdict.UnboundRefused => "the token is not bound to a certificate and this API accepts certificate-bound tokens only",
        BindingVerdict.NoCertificate => "the token is bound to a certificate and the caller presented none",
        BindingVerdict.OtherCertificate => "the token is bound to another certificate than the caller's",
        BindingVerdict.UnknownConfirmation => "the token's cnf claim has no x5t#S256 this API can check",
        _ => verdict.ToString(),
    };
}
