using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Identity.Region.Validation;

/// <summary>
/// The binding check, after JwtBearer verified the token: a certificate-bound token only from the holder of that
/// certificate (RFC 8705 §3), whose chain the Certificate handler validated. A refusal is a 401 with
/// <c>WWW-Authenticate: Bearer error="invalid_token"</c> (RFC 6750 §3.1; RFC 8705 §3 names that error).
/// </summary>
public class IdentityBearerEvents(
    IOptions<IdentityTokenValidationOptions> options, CallerCertificateChain chains, ILogger<IdentityBearerEvents> logger) : JwtBearerEvents
{
    public override async Task TokenValidated(TokenValidatedContext context)
    {
        var http = context.HttpContext;
        var certificate = http.Connection.ClientCertificate;
        // One SHA-256 of the caller's certificate per call, for the binding and the chain cache's key.
        Span<byte> thumbprint = stackalloc byte[System.Security.Cryptography.SHA256.HashSizeInBytes];
        var verdict = CertificateBinding.Check(context.Principal?.Identity as System.Security.Claims.ClaimsIdentity, certificate, options.Value.RequireCertificateBinding, thumbprint);
        if (verdict is not (BindingVerdict.Bound or BindingVerdict.Unbound))
        {
            Refuse(context, CertificateBinding.Describe(verdict));
            return;
        }

        if (verdict == BindingVerdict.Bound)
        {
            // Never a chain the handler would complete from the network (decision 0067).
            if (!chains.IsCompleteLocally(certificate!, thumbprint))
            {
                Refuse(context, "the caller's certificate is not trusted: its issuer is not one this service holds");
                return;
            }

            // The certificate matches the token; it must also still be one this service trusts: unexpired, for client
            // authentication, its chain ending in TrustedCaFile (validated once per certificate, then cached).
            var chain = await http.AuthenticateAsync(IdentityBearerDefaults.CertificateScheme);
            if (!chain.Succeeded)
            {
                Refuse(context, "the caller's certificate is not trusted: " + (chain.Failure?.Message ?? "no certificate reached the certificate check"));
                return;
            }
        }

        await base.TokenValidated(context);
    }

    private void Refuse(TokenValidatedContext context, string reason)
    {
        // Who and why, never the token nor the certificate.
        logger.LogInformation("Access token of client {ClientId} refused on {Path}: {Reason}.",
            context.Principal?.FindFirst("client_id")?.Value, context.HttpContext.Request.Path, reason);
        context.Fail(new CertificateBindingException(reason));
    }
}

/// <summary>The token's binding to a certificate (RFC 8705 §3) does not hold on this call.</summary>
public sealed class CertificateBindingException(string message) : Exception(message);

public static class IdentityBearerDefaults
{
    /// <summary>The scheme of the bearer token check (JwtBearer's own default name).</summary>
    public const string AuthenticationScheme = JwtBearerDefaults.AuthenticationScheme;

    /// <summary>The scheme that validates the caller's certificate chain; used by the binding check, not as a default.</summary>
    public const string CertificateScheme = "Identity.CallerCertificate";
}
