using System.Security.Cryptography.X509Certificates;
using Microsoft.IdentityModel.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Clients;

/// <summary>Rules across the fields of a declared client; a broken declaration stops the server at start.</summary>
public static class ClientDefinitionRules
{
    private static readonly HashSet<string> SupportedGrantTypes =
        [GrantTypes.ClientCredentials, GrantTypes.AuthorizationCode, GrantTypes.RefreshToken];

    /// <param name="secretGenerated">The server generates the secret (admin API): no reference to resolve.</param>
    public static IEnumerable<string> Validate(ClientDefinition client, string path, bool secretGenerated = false)
    {
        if (string.IsNullOrWhiteSpace(client.ClientId))
        {
            yield return $"{path}:ClientId is required.";
        }

        if (client.GrantTypes.Count == 0)
        {
            yield return $"{path}:GrantTypes must name at least one grant type.";
        }

        foreach (var grant in client.GrantTypes.Where(g => !SupportedGrantTypes.Contains(g)))
        {
            yield return $"{path}:GrantTypes: '{grant}' is not supported (use {string.Join(", ", SupportedGrantTypes)}).";
        }

        var hasReference = client.SecretEnvironmentVariable is not null || client.SecretFile is not null;
        var hasSecret = hasReference || secretGenerated;
        var hasJwks = client.Jwks is not null || client.JwksFile is not null;
        var certificateNames = new[] { client.TlsClientAuthSubjectDn, client.TlsClientAuthSanDns, client.TlsClientAuthSanUri }.Count(n => n is not null);
        var hasCertificate = certificateNames > 0;
        if (client.SecretEnvironmentVariable is not null && client.SecretFile is not null)
        {
            yield return $"{path}: set SecretEnvironmentVariable or SecretFile, not both.";
        }

        if (client.GrantTypes.Contains(GrantTypes.ClientCredentials) && !hasSecret && !hasJwks && !hasCertificate)
        {
            yield return $"{path}: client_credentials needs a confidential client (a secret, a JWKS for private_key_jwt, or a TlsClientAuth* certificate name).";
        }

        foreach (var error in CertificateNameErrors(client, path, certificateNames))
        {
            yield return error;
        }

        foreach (var error in MethodErrors(client, path, hasSecret, hasJwks, certificateNames))
        {
            yield return error;
        }

        if (client.RefreshTokenReuseLeeway is { } leeway)
        {
            // RFC 9700 §4.14.2: a public client's refresh token must be sender-constrained or rotated with reuse detection;
            // a leeway suspends the detection, for anyone holding a copy of the token.
            if (!hasSecret && !hasJwks && !hasCertificate)
            {
                yield return $"{path}:RefreshTokenReuseLeeway: only a confidential client (a secret, or a JWKS for private_key_jwt) may have a " +
                    "refresh-token reuse leeway; a public client's refresh tokens are rotated with reuse detection, without one.";
            }

            if (!client.GrantTypes.Contains(GrantTypes.RefreshToken))
            {
                yield return $"{path}:RefreshTokenReuseLeeway: the client has no refresh_token grant.";
            }

            if (leeway < TimeSpan.Zero || leeway > Connect.RefreshTokenReuse.MaxLeeway)
            {
                yield return $"{path}:RefreshTokenReuseLeeway: between 00:00:00 and {Connect.RefreshTokenReuse.MaxLeeway:c}.";
            }
        }

        foreach (var problem in ClientAccessPolicy.Problems(client.AllowedIpRanges, client.TokenRateLimit, hasSecret || hasJwks || hasCertificate))
        {
            var key = problem.Field.Replace('.', ':') + (problem.Index is { } index ? $":{index}" : "");
            yield return $"{path}:{key}: {problem.Message}";
        }

        if (client.GrantTypes.Contains(GrantTypes.AuthorizationCode) && client.RedirectUris.Count == 0)
        {
            yield return $"{path}:RedirectUris: authorization_code needs at least one redirect URI.";
        }

        foreach (var uri in client.RedirectUris.Concat(client.PostLogoutRedirectUris))
        {
            // RFC 6749 §3.1.2: absolute, no fragment.
            if (!uri.IsAbsoluteUri || !string.IsNullOrEmpty(uri.Fragment))
            {
                yield return $"{path}: redirect URI '{uri}' must be absolute and carry no fragment.";
            }
        }

        if (hasReference)
        {
            string? error = null;
            try
            {
                var secret = ResolveSecret(client);
                if (secret is null)
                {
                    error = $"{path}: the secret reference ({client.SecretEnvironmentVariable ?? client.SecretFile}) is empty or missing.";
                }
                else if (secret.Length < ClientSecretHasher.MinimumLength)
                {
                    error = $"{path}: the client secret must be at least {ClientSecretHasher.MinimumLength} characters of random data.";
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // ArgumentException: a path that is empty or not a path (Oidc__Clients__0__SecretFile= in the environment).
                error = $"{path}:SecretFile cannot be read: {ex.Message}";
            }

            if (error is not null)
            {
                yield return error;
            }
        }

        if (hasJwks)
        {
            string? error = null;
            try
            {
                var set = ResolveJwks(client);
                if (set is null || set.Keys.Count == 0)
                {
                    error = $"{path}: the JWKS is empty.";
                }
                else if (set.Keys.Any(k => k.HasPrivateKey))
                {
                    error = $"{path}: the JWKS must hold public keys only.";
                }
            }
            catch (Exception ex) when (ex is ArgumentException or IOException or System.Text.Json.JsonException)
            {
                error = $"{path}: the JWKS cannot be read: {ex.Message}";
            }

            if (error is not null)
            {
                yield return error;
            }
        }
    }

    /// <summary>The token endpoint authentication methods a client may register (RFC 7591 §2, RFC 8705 §2).</summary>
    public static readonly IReadOnlyList<string> Methods =
    [
        ClientAuthenticationMethods.ClientSecretBasic, ClientAuthenticationMethods.ClientSecretPost,
        ClientAuthenticationMethods.PrivateKeyJwt, ClientAuthenticationMethods.TlsClientAuth,
        ClientAuthenticationMethods.SelfSignedTlsClientAuth, ClientAuthenticationMethods.None,
    ];

    /// <summary>The client's method: the declared one, else the one its credentials imply.</summary>
    public static string AuthenticationMethod(ClientDefinition client, bool secretGenerated = false) =>
        client.TokenEndpointAuthMethod
        ?? (ClientCertificateIdentity.From(client) is not null ? ClientAuthenticationMethods.TlsClientAuth
            : client.SecretEnvironmentVariable is not null || client.SecretFile is not null || secretGenerated ? ClientAuthenticationMethods.ClientSecretBasic
            : client.Jwks is not null || client.JwksFile is not null ? ClientAuthenticationMethods.PrivateKeyJwt
            : ClientAuthenticationMethods.None);

    /// <summary>The declared method must be served by the credentials declared with it, and by nothing else.</summary>
    private static IEnumerable<string> MethodErrors(ClientDefinition client, string path, bool hasSecret, bool hasJwks, int certificateNames)
    {
        if (client.TokenEndpointAuthMethod is not { } method)
        {
            yield break;
        }

        if (!Methods.Contains(method))
        {
            yield return $"{path}:TokenEndpointAuthMethod: '{method}' is not supported (use {string.Join(", ", Methods)}).";
            yield break;
        }

        if (certificateNames > 0 && method != ClientAuthenticationMethods.TlsClientAuth)
        {
            yield return $"{path}:TokenEndpointAuthMethod: TlsClientAuthSubjectDn, TlsClientAuthSanDns and TlsClientAuthSanUri go with tls_client_auth only.";
        }

        switch (method)
        {
            case ClientAuthenticationMethods.TlsClientAuth when certificateNames == 0:
                // RFC 8705 §2.1.2: the name the certificate must carry is registered with the client.
                yield return $"{path}:TokenEndpointAuthMethod: tls_client_auth needs one of TlsClientAuthSubjectDn, TlsClientAuthSanDns and TlsClientAuthSanUri.";
                break;
            case ClientAuthenticationMethods.TlsClientAuth or ClientAuthenticationMethods.SelfSignedTlsClientAuth when hasSecret:
                yield return $"{path}:TokenEndpointAuthMethod: a certificate client has no secret.";
                break;
            case ClientAuthenticationMethods.SelfSignedTlsClientAuth when !SelfSignedCertificates(client).Any():
                // RFC 8705 §2.2: the certificates the client may present are the x5c of its registered JWKS.
                yield return $"{path}:Jwks: self_signed_tls_client_auth needs a JWKS whose keys carry the client's self-signed certificate in x5c.";
                break;
            case ClientAuthenticationMethods.ClientSecretBasic or ClientAuthenticationMethods.ClientSecretPost when !hasSecret:
                yield return $"{path}:TokenEndpointAuthMethod: {method} needs a secret (SecretEnvironmentVariable or SecretFile).";
                break;
            case ClientAuthenticationMethods.PrivateKeyJwt when !hasJwks:
                yield return $"{path}:Jwks: private_key_jwt needs the client's public JSON Web Key Set.";
                break;
            case ClientAuthenticationMethods.None when hasSecret || hasJwks:
                yield return $"{path}:TokenEndpointAuthMethod: a public client (none) has no secret and no JWKS.";
                break;
        }
    }

    /// <summary>The self-issued certificates carried in the x5c of the client's JWKS keys; an unreadable JWKS has none.</summary>
    public static IEnumerable<X509Certificate2> SelfSignedCertificates(ClientDefinition client)
    {
        JsonWebKeySet? set;
        try
        {
            set = ResolveJwks(client);
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or System.Text.Json.JsonException)
        {
            yield break; // reported by the JWKS rule
        }

        foreach (var key in set?.Keys ?? [])
        {
            X509Certificate2? certificate = null;
            try
            {
                certificate = key.X5c.Count > 0 ? X509CertificateLoader.LoadCertificate(Convert.FromBase64String(key.X5c[0])) : null;
            }
            catch (Exception ex) when (ex is FormatException or System.Security.Cryptography.CryptographicException)
            {
            }

            if (certificate is not null && certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData))
            {
                yield return certificate;
            }
        }
    }

    /// <summary>RFC 8705 §2.1.2: a <c>tls_client_auth</c> client registers exactly one name its certificate must carry.</summary>
    private static IEnumerable<string> CertificateNameErrors(ClientDefinition client, string path, int count)
    {
        if (count > 1)
        {
            yield return $"{path}: set one of TlsClientAuthSubjectDn, TlsClientAuthSanDns and TlsClientAuthSanUri, not several (RFC 8705 §2.1.2).";
        }

        if (client.TlsClientAuthSubjectDn is { } dn)
        {
            string? error = null;
            try
            {
                if (string.IsNullOrWhiteSpace(ClientCertificateIdentity.Canonical(dn)))
                {
                    error = $"{path}:TlsClientAuthSubjectDn is empty.";
                }
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                error = $"{path}:TlsClientAuthSubjectDn '{dn}' is not a distinguished name (e.g. CN=orders,O=Example).";
            }

            if (error is not null)
            {
                yield return error;
            }
        }

        if (client.TlsClientAuthSanDns is { } dns && Uri.CheckHostName(dns) != UriHostNameType.Dns)
        {
            yield return $"{path}:TlsClientAuthSanDns '{dns}' is not a DNS name.";
        }

        if (client.TlsClientAuthSanUri is { } uri && !Uri.TryCreate(uri, UriKind.Absolute, out _))
        {
            yield return $"{path}:TlsClientAuthSanUri '{uri}' is not an absolute URI.";
        }
    }

    public static string? ResolveSecret(ClientDefinition client)
    {
        var value = client.SecretEnvironmentVariable is { } variable
            ? Environment.GetEnvironmentVariable(variable)
            : client.SecretFile is { } file ? File.ReadAllText(file) : null;
        return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
    }

    public static JsonWebKeySet? ResolveJwks(ClientDefinition client)
    {
        var json = client.Jwks ?? (client.JwksFile is { } file ? File.ReadAllText(file) : null);
        return json is null ? null : JsonWebKeySet.Create(json);
    }
}
