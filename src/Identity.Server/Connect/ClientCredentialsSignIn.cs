using System.Collections.Immutable;
using System.Security.Claims;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Issues the access token of a client-credentials grant (RFC 6749 §4.4) inside OpenIddict's pipeline:
/// the subject is the client itself, the scopes are the requested (and already validated) ones, and the
/// audiences are the resources those scopes grant — narrowed to the <c>resource</c> parameters if the client sent
/// any (RFC 8707 §2).
/// </summary>
public sealed class ClientCredentialsSignIn(ScopeCatalog catalog) : IOpenIddictServerHandler<HandleTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleTokenRequestContext>()
            .UseSingletonHandler<ClientCredentialsSignIn>()
            // After OpenIddict has attached the request's principal (none for this grant), as the other grant's UserTokenSignIn.
            .SetOrder(OpenIddictServerHandlers.Exchange.AttachPrincipal.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    private static readonly ImmutableArray<string> AccessTokenOnly = [Destinations.AccessToken];

    public async ValueTask HandleAsync(HandleTokenRequestContext context)
    {
        if (!context.Request.IsClientCredentialsGrantType() || context.ClientId is not { Length: > 0 } clientId)
        {
            return;
        }

        var scopes = context.Request.GetScopes();
        var known = await catalog.GetAsync(context.CancellationToken);
        var granted = scopes.SelectMany(scope => known.TryGetValue(scope, out var resources) ? resources : [])
            .Distinct(StringComparer.Ordinal)
            .ToImmutableArray();

        var requested = context.Request.GetResources();
        if (!requested.IsDefaultOrEmpty)
        {
            var outside = requested.FirstOrDefault(resource => !granted.Contains(resource, StringComparer.Ordinal));
            if (outside is not null)
            {
                // RFC 8707 §2: a resource the client may not obtain a token for is "invalid_target".
                context.Reject(error: Errors.InvalidTarget,
                    description: $"The resource '{outside}' is not granted by the requested scopes.");
                return;
            }

            granted = requested;
        }

        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, clientId);
        identity.SetClaim(Claims.ClientId, clientId);
        identity.SetScopes(scopes);
        identity.SetResources(granted);

        // Only client_id needs a destination: OpenIddict's PrepareAccessTokenPrincipal always keeps "sub" and the scopes,
        // derives the audiences from the resources and drops every other private claim whatever its destinations.
        // OpenIddict writes each claim's destinations as JSON through its own MemoryStream and Utf8JsonWriter: doing it
        // for all five claims was ~10 % of the bytes allocated per token (allocation-tick trace) and ~1.5 % of the CPU.
        identity.FindFirst(Claims.ClientId)?.SetDestinations(AccessTokenOnly);

        context.SignIn(new ClaimsPrincipal(identity));
    }
}
