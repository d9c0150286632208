using System.Security.Claims;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// OpenIddict's <c>AttachTokenSubject</c> (<c>GenerateToken</c>): the claims a token's JWT payload is written from,
/// picked without copying them. OpenIddict clones the token's whole principal (each claim and its properties) to drop
/// the claims its next handler writes itself (dates, issuer and token type; audiences and scopes of access and ID
/// tokens; amr of ID tokens), and hands the copy's identity to IdentityModel, whose payload writer only enumerates its
/// claims (type, value, value type). Here that identity holds the same claim instances, kept by the same rule and in
/// the same order, taken when OpenIddict would take its copy: the same payload, without a copy of the principal per
/// token (the code at the authorization endpoint, the access and ID tokens at the token endpoint; decision 0102).
/// </summary>
public sealed class UncopiedTokenSubject : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
            .UseSingletonHandler<UncopiedTokenSubject>()
            // In place of OpenIddict's handler (removed in Hosting/OidcServerExtensions): after the token entry is created
            // (its id is one of the claims), before the metadata handler fills the descriptor's own claims.
            .SetOrder(OpenIddictServerHandlers.Protection.AttachTokenSubject.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Principal?.Identity is not ClaimsIdentity identity)
        {
            throw new InvalidOperationException("The token's principal has no claims identity.");
        }

        var kept = new List<Claim>();
        foreach (var claim in identity.Claims)
        {
            if (Keeps(claim.Type, context.TokenType))
            {
                kept.Add(claim);
            }
        }

        context.SecurityTokenDescriptor.Subject = new ClaimsView(identity, kept);
        return ValueTask.CompletedTask;
    }

    /// <summary>OpenIddict 7.8's rule (<c>AttachTokenSubject</c>): what its metadata handler writes is not a claim of the subject.</summary>
    internal static bool Keeps(string type, string? tokenType) => type switch
    {
        Claims.Private.CreationDate or Claims.Private.ExpirationDate or Claims.Private.Issuer or Claims.Private.TokenType => false,
        Claims.Private.Audience => tokenType is not (TokenTypeIdentifiers.AccessToken or TokenTypeIdentifiers.IdentityToken),
        Claims.Private.Scope => tokenType is not TokenTypeIdentifiers.AccessToken,
        Claims.AuthenticationMethodReference => tokenType is not TokenTypeIdentifiers.IdentityToken,
        _ => true,
    };

    /// <summary>
    /// An identity whose claims are those of another, not copies (a <see cref="ClaimsIdentity"/> copies every claim it is
    /// given that belongs to another identity). Read-only in effect: a claim added to it would not show in <see cref="Claims"/>.
    /// </summary>
    private sealed class ClaimsView(ClaimsIdentity source, List<Claim> claims)
        : ClaimsIdentity(source.AuthenticationType, source.NameClaimType, source.RoleClaimType)
    {
        public override IEnumerable<Claim> Claims => claims;
    }
}
