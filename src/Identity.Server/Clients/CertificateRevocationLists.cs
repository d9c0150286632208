using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Server.Connect;
using Identity.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Identity.Server.Clients;

/// <summary>One parsed and verified CRL (RFC 5280 §5.1): its issuer, validity and revoked serial numbers.</summary>
public sealed record CertificateRevocationList(X500DistinguishedName Issuer, DateTimeOffset ThisUpdate, DateTimeOffset? NextUpdate, IReadOnlySet<BigInteger> Revoked)
{
    private static readonly Dictionary<string, HashAlgorithmName> RsaAlgorithms = new()
    {
        ["1.2.840.113549.1.1.11"] = HashAlgorithmName.SHA256,
        ["1.2.840.113549.1.1.12"] = HashAlgorithmName.SHA384,
        ["1.2.840.113549.1.1.13"] = HashAlgorithmName.SHA512,
    };

    private static readonly Dictionary<string, HashAlgorithmName> EcdsaAlgorithms = new()
    {
        ["1.2.840.10045.4.3.2"] = HashAlgorithmName.SHA256,
        ["1.2.840.10045.4.3.3"] = HashAlgorithmName.SHA384,
        ["1.2.840.10045.4.3.4"] = HashAlgorithmName.SHA512,
    };

    /// <summary>
    /// The CRLs of <paramref name="files"/> (<c>;</c>-separated, PEM "X509 CRL" blocks or DER), each verified with the
    /// key of the trusted CA it names as issuer. Throws <see cref="InvalidDataException"/> saying what is wrong.
    /// </summary>
    public static IReadOnlyList<CertificateRevocationList> Load(string files, X509Certificate2Collection? trusted)
    {
        var lists = new List<CertificateRevocationList>();
        foreach (var file in Split(files))
        {
            byte[] content;
            try
            {
                content = File.ReadAllBytes(file);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new InvalidDataException($"'{file}' cannot be read: {ex.Message}", ex);
            }

            var blocks = DerBlocks(content).ToList();
            if (blocks.Count == 0)
            {
                throw new InvalidDataException($"'{file}' holds no CRL (PEM \"X509 CRL\" or DER).");
            }

            foreach (var der in blocks)
            {
                try
                {
                    lists.Add(Parse(der, trusted, file));
                }
                catch (Exception ex) when (ex is AsnContentException or CryptographicException or ArgumentException)
                {
                    throw new InvalidDataException($"'{file}' is not a well-formed CRL: {ex.Message}", ex);
                }
            }
        }

        return lists;
    }

    public static IEnumerable<string> Split(string files) =>
        files.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static IEnumerable<byte[]> DerBlocks(byte[] content)
    {
        if (content.Length > 0 && content[0] == 0x30)
        {
            yield return content; // DER
            yield break;
        }

        var text = System.Text.Encoding.ASCII.GetString(content).AsMemory();
        while (PemEncoding.TryFind(text.Span, out var fields))
        {
            if (text.Span[fields.Label].SequenceEqual("X509 CRL"))
            {
                yield return Convert.FromBase64String(text.Span[fields.Base64Data].ToString());
            }

            text = text[fields.Location.End..];
        }
    }

    /// <summary>
    /// RFC 5280 §5.1: CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING };
    /// TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature, issuer Name, thisUpdate Time, nextUpdate Time
    /// OPTIONAL, revokedCertificates SEQUENCE OF SEQUENCE { userCertificate, revocationDate, extensions OPTIONAL }
    /// OPTIONAL, crlExtensions [0] OPTIONAL }. The signature is over the DER bytes of tbsCertList (§5.1.1.3).
    /// </summary>
    private static CertificateRevocationList Parse(byte[] der, X509Certificate2Collection? trusted, string file)
    {
        var outer = new AsnReader(der, AsnEncodingRules.DER);
        var list = outer.ReadSequence();
        var signed = list.PeekEncodedValue().ToArray();
        var tbs = list.ReadSequence();
        var algorithm = list.ReadSequence().ReadObjectIdentifier();
        var signature = list.ReadBitString(out _);

        if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
        {
            tbs.ReadInteger(); // version
        }

        tbs.ReadSequence(); // signature algorithm, repeated
        var issuer = new X500DistinguishedName(tbs.ReadEncodedValue().Span);
        var thisUpdate = ReadTime(tbs);
        DateTimeOffset? nextUpdate = tbs.HasData && IsTime(tbs.PeekTag()) ? ReadTime(tbs) : null;
        var revoked = new HashSet<BigInteger>();
        if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
        {
            var entries = tbs.ReadSequence();
            while (entries.HasData)
            {
                revoked.Add(entries.ReadSequence().ReadInteger());
            }
        }

        var signer = trusted?.FirstOrDefault(ca => ca.SubjectName.RawData.AsSpan().SequenceEqual(issuer.RawData)
            && Verifies(ca, algorithm, signed, signature));
        if (signer is null)
        {
            throw new InvalidDataException(
                $"'{file}': the CRL of '{issuer.Name}' is not signed by a CA of Mtls:TrustedCaFile (or with an unsupported algorithm {algorithm}).");
        }

        return new CertificateRevocationList(issuer, thisUpdate, nextUpdate, revoked);
    }

    private static bool Verifies(X509Certificate2 ca, string algorithm, byte[] signed, byte[] signature)
    {
        if (RsaAlgorithms.TryGetValue(algorithm, out var rsaHash))
        {
            using var rsa = ca.GetRSAPublicKey();
            return rsa?.VerifyData(signed, signature, rsaHash, RSASignaturePadding.Pkcs1) == true;
        }

        if (EcdsaAlgorithms.TryGetValue(algorithm, out var ecHash))
        {
            using var ecdsa = ca.GetECDsaPublicKey();
            return ecdsa?.VerifyData(signed, signature, ecHash, DSASignatureFormat.Rfc3279DerSequence) == true;
        }

        return false;
    }

    private static bool IsTime(Asn1Tag tag) =>
        tag.HasSameClassAndValue(Asn1Tag.UtcTime) || tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime);

    private static DateTimeOffset ReadTime(AsnReader reader) =>
        reader.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) ? reader.ReadUtcTime() : reader.ReadGeneralizedTime();
}

/// <summary>
/// The CRLs of <c>Mtls:CrlFile</c> for <c>tls_client_auth</c> (decision 0046, "CRLs"): a certificate whose serial its
/// issuer's CRL lists is refused (<c>revoked</c>), and while that CRL is past its nextUpdate every certificate of that
/// issuer is refused (<c>crl_expired</c>, fail closed). The files are looked at again at most every
/// <see cref="MutualTlsOptions.CrlCheckInterval"/>; a changed file is parsed and verified again (a bad one keeps the
/// old lists) and the validation cache is cleared.
/// </summary>
public sealed class ClientCertificateRevocation(
    IOptionsMonitor<MutualTlsOptions> options, TimeProvider time, ClientCertificateValidationCache validations,
    ILogger<ClientCertificateRevocation> logger) : IHostedService
{
    private readonly Lock _lock = new();
    private IReadOnlyList<CertificateRevocationList> _lists = [];
    private string? _loadedStamp;
    private DateTimeOffset _checkedAt = DateTimeOffset.MinValue;
    private bool _expiryLogged;

    /// <summary>Loaded at start (after the options were validated), so that the files checked then are the ones in force.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Current();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Why <paramref name="certificate"/> is refused by its issuer's CRL, if it is.</summary>
    public string? Refusal(X509Certificate2 certificate)
    {
        var lists = Current();
        if (lists.Count == 0)
        {
            return null;
        }

        var now = time.GetUtcNow();
        var serial = new BigInteger(certificate.SerialNumberBytes.Span, isUnsigned: true, isBigEndian: true);
        foreach (var list in lists.Where(l => l.Issuer.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData)))
        {
            if (list.NextUpdate is { } next && now > next)
            {
                if (!_expiryLogged)
                {
                    _expiryLogged = true;
                    logger.LogWarning("The CRL of {Issuer} is past its nextUpdate ({NextUpdate:O}): its certificates are refused until Mtls:CrlFile is renewed.",
                        list.Issuer.Name, next);
                }

                return CertificateRefusal.CrlExpired;
            }

            if (list.Revoked.Contains(serial))
            {
                return CertificateRefusal.Revoked;
            }
        }

        return null;
    }

    private IReadOnlyList<CertificateRevocationList> Current()
    {
        var current = options.CurrentValue;
        if (string.IsNullOrWhiteSpace(current.CrlFile))
        {
            return [];
        }

        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (_loadedStamp is not null && now - _checkedAt < current.CrlCheckInterval)
            {
                return _lists;
            }

            _checkedAt = now;
            var stamp = string.Join(";", CertificateRevocationList.Split(current.CrlFile)
                .Select(f => $"{f}@{File.GetLastWriteTimeUtc(f).Ticks}"));
            if (stamp == _loadedStamp)
            {
                return _lists;
            }

            try
            {
                _lists = CertificateRevocationList.Load(current.CrlFile, MutualTlsExtensions.TryLoadBundle(current.TrustedCaFile));
                var first = _loadedStamp is null;
                _loadedStamp = stamp;
                _expiryLogged = false;
                validations.Clear();
                if (!first)
                {
                    logger.LogInformation("Mtls:CrlFile reloaded: {Count} CRL(s).", _lists.Count);
                }
            }
            catch (InvalidDataException ex)
            {
                _loadedStamp ??= stamp;
                logger.LogError("Mtls:CrlFile changed but cannot be used, the previous CRLs are kept: {Reason}", ex.Message);
            }

            return _lists;
        }
    }
}
