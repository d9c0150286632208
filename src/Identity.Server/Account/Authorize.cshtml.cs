using System.Collections.Immutable;
using Identity.Core.Data;
using Identity.Core.Policies;
using Identity.Server.Connect;
using Identity.Server.Connect.Replacements;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Account;

/// <summary>
/// The authorization endpoint (OpenID Connect Core §3.1.2) once OpenIddict has validated the request
/// (client, exact redirect URI, PKCE S256, response type): decides whether the person must sign in
/// (no session, <c>prompt=login</c>, <c>max_age</c> exceeded), whether consent is needed, and issues the code.
/// </summary>
public sealed class AuthorizeModel(
    IOpenIddictApplicationManager applications,
    IOpenIddictAuthorizationManager authorizations,
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    Mfa.SecondFactors factors,
    AccountPolicies policies,
    ScopeCatalog catalog,
    Identity.Core.Audit.IAuditTrail audit,
    AuthorityDbContext db,
    DirectoryCache directory,
    CodeIssuanceBatch codeIssuance,
    IDataProtectionProvider dataProtection,
    TimeProvider time) : PageModel
{
    /// <summary>
    /// The parameter Identity adds to the authorization request it sends the person to sign in with: when the sign-in
    /// that request needed began, bound to that request (<see cref="FreshSignInMarker"/>).
    /// </summary>
    public const string FreshSignInParameter = "identity_fresh_signin";

    private readonly IDataProtector _freshSignIn = dataProtection.CreateProtector("Identity.Server.Account.FreshSignIn.v1");

    public string ClientName { get; private set; } = "";

    public IReadOnlyList<string> Scopes { get; private set; } = [];

    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; private set; } = [];

    public Task<IActionResult> OnGetAsync() => AuthorizeAsync(decision: null);

    public Task<IActionResult> OnPostAsync([FromForm] string? decision) => AuthorizeAsync(decision);

    private async Task<IActionResult> AuthorizeAsync(string? decision)
    {
        var request = HttpContext.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The OpenID Connect request cannot be retrieved.");

        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        // The session's user as this replica last read it (DirectoryCache), like its account below.
        var user = session.Succeeded ? await directory.UserAsync(db, users.GetUserId(session.Principal), HttpContext.RequestAborted) : null;
        if (user is not null && !await signIn.CanSignInAsync(user))
        {
            // Disabled since the session began (or the account was suspended): the session ends here.
            await signIn.SignOutAsync();
            user = null;
        }

        if (user is null || session.Principal is null || MustSignInAgain(request, session.Principal))
        {
            // §3.1.2.6: with prompt=none the client asked for no UI at all.
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.LoginRequired, "The user must sign in.");
            }

            return SignInFirst(session.Principal);
        }

        // A second factor is needed when the client asks for it (acr_values, OpenID Connect Core §3.1.2.1: step-up) or
        // the account's policy requires it for this user; no code is issued before — enrolment first if there is none.
        var policy = await policies.ForAsync(user, HttpContext.RequestAborted);
        if (!policy.IpAllowList.Allows(HttpContext.Connection.RemoteIpAddress))
        {
            await signIn.SignOutAsync();
            return SignInFirst(session.Principal);
        }

        var mfaRequired = request.GetAcrValues().Contains(SessionClaims.AcrMultiFactor)
            || Identity.Core.Policies.MfaRules.IsRequired(policy.Mfa, user.Role);
        if (mfaRequired && !session.Principal.IsMultiFactor())
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.InteractionRequired, "A second factor is required.");
            }

            var back = ReturnUrl(marker: FreshSignInMarkerOfRequest());
            if (!await factors.HasAnyFactorAsync(user))
            {
                // Enrolment first, with a factor the account allows (TOTP unless only passkeys are).
                return RedirectToPage(policy.Mfa.Allows(MfaFactor.Totp) ? "/Totp" : "/Passkeys", new { ReturnUrl = back });
            }

            await Mfa.SecondFactors.BeginSecondStepAsync(HttpContext, user.Id);
            return RedirectToPage("/TwoFactor", new { ReturnUrl = back });
        }

        // The account's password.maximumAge: a sign-in with an expired password gets no code before the password is
        // changed; the change-password page then comes back here.
        if (session.Principal.UsedPassword() && AccountPolicies.IsPasswordExpired(user, policy, time.GetUtcNow()))
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.InteractionRequired, "The password has expired and must be changed.");
            }

            audit.Record(new Identity.Core.Audit.Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString()),
                "user.password_expired_forced_change", "user", user.Id, user.AccountId, new { client = request.ClientId });
            await db.SaveChangesAsync(HttpContext.RequestAborted);
            return RedirectToPage("/Password", new { ReturnUrl = ReturnUrl(marker: FreshSignInMarkerOfRequest()) });
        }

        var application = await applications.FindByClientIdAsync(request.ClientId!)
            ?? throw new InvalidOperationException("The client application cannot be found.");
        var applicationId = await applications.GetIdAsync(application);
        var subject = user.Id;
        var scopes = request.GetScopes();

        if (await applications.HasConsentTypeAsync(application, ConsentTypes.Explicit))
        {
            if (decision == "deny")
            {
                return Refuse(Errors.AccessDenied, "The user denied the request.");
            }

            if (decision == "allow")
            {
                // Remembered consent: a permanent authorization, revocable by the user or an admin.
                await authorizations.CreateAsync(UserPrincipalFactory.ForCode(subject, session.Principal, scopes, []),
                    subject, applicationId!, AuthorizationTypes.Permanent, scopes);
            }
            else if (request.HasPromptValue(PromptValues.Consent) || !await HasConsentAsync(subject, applicationId!, scopes))
            {
                if (request.HasPromptValue(PromptValues.None))
                {
                    return Refuse(Errors.ConsentRequired, "The user must consent.");
                }

                ClientName = await applications.GetLocalizedDisplayNameAsync(application) ?? request.ClientId!;
                Scopes = scopes;
                Parameters = request.GetParameters()
                    .Where(p => p.Key != "decision" && p.Key != "__RequestVerificationToken")
                    .Select(p => new KeyValuePair<string, string>(p.Key, p.Value.ToString() ?? ""))
                    .ToList();
                return Page();
            }
        }

        // An ad-hoc authorization per code ties the code, its tokens and refresh tokens together, so a replayed
        // code or refresh token revokes exactly that chain (RFC 6749 §4.1.2, §10.5; RFC 9700 §4.14.2).
        // The authorization and the code's token entry are written together when the code is issued (CodeIssuanceBatch).
        // Only the code leaves this endpoint (code flow only: no implicit or hybrid response types are enabled), so its
        // principal carries no claim about the user: the token endpoint reads the user afresh (decision 0095).
        if (!request.IsAuthorizationCodeFlow())
        {
            throw new InvalidOperationException("Only the authorization code flow is enabled; no token is issued here.");
        }

        var resources = await ResourcesOfAsync(scopes);
        var principal = UserPrincipalFactory.ForCode(subject, session.Principal, scopes, resources);
        codeIssuance.Begin();
        var authorization = await authorizations.CreateAsync(principal, subject, applicationId!, AuthorizationTypes.AdHoc, scopes);
        principal.SetAuthorizationId(await authorizations.GetIdAsync(authorization));

        return SignIn(principal, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>
    /// <c>prompt=login</c>, or a session older than <c>max_age</c> (§3.1.2.1), needs a fresh sign-in — unless the session
    /// is the sign-in made for this very request, which satisfies both: max_age=0 would otherwise send the person back
    /// to the login page forever, the request carrying max_age=0 again once signed in.
    /// </summary>
    private bool MustSignInAgain(OpenIddictRequest request, System.Security.Claims.ClaimsPrincipal session)
    {
        if (FreshSignInMarkerOfRequest() is { } marker && marker.IsSatisfiedBy(session))
        {
            return false;
        }

        if (request.HasPromptValue(PromptValues.Login))
        {
            return true;
        }

        return request.MaxAge is { } maxAge
            && (session.GetSignedInAt() is not { } signedInAt || time.GetUtcNow() > signedInAt.AddSeconds(maxAge));
    }

    /// <summary>
    /// To the login page, then back to this request, marked with when this sign-in was asked for and by which session
    /// (<see cref="FreshSignInMarker"/>).
    /// </summary>
    private ChallengeResult SignInFirst(System.Security.Claims.ClaimsPrincipal? session)
    {
        var marker = new FreshSignInMarker(time.GetUtcNow(), session?.FindFirst(SessionClaims.SessionId)?.Value ?? "", RequestBinding());
        return Challenge(new AuthenticationProperties { RedirectUri = ReturnUrl(marker) }, IdentityConstants.ApplicationScheme);
    }

    /// <summary>The marker this request carries, if it is one Identity made for this very request and recently.</summary>
    private FreshSignInMarker? FreshSignInMarkerOfRequest()
    {
        var values = Request.HasFormContentType ? Request.Form[FreshSignInParameter] : Request.Query[FreshSignInParameter];
        if (values is not [{ Length: > 0 } value])
        {
            return null;
        }

        string text;
        try
        {
            text = _freshSignIn.Unprotect(value);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }

        return FreshSignInMarker.Parse(text) is { } marker
            && marker.Binding == RequestBinding()
            && time.GetUtcNow() - marker.RequestedAt is var age && age >= -FreshSignInMarker.ClockTolerance && age <= FreshSignInMarker.Lifetime
                ? marker
                : null;
    }

    private async Task<bool> HasConsentAsync(string subject, string applicationId, ImmutableArray<string> scopes)
    {
        await foreach (var _ in authorizations.FindAsync(subject, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, scopes))
        {
            return true;
        }

        return false;
    }

    private async Task<ImmutableArray<string>> ResourcesOfAsync(ImmutableArray<string> scopes)
    {
        var known = await catalog.GetAsync(HttpContext.RequestAborted);
        return [.. scopes.SelectMany(s => known.TryGetValue(s, out var r) ? r : []).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>The same authorization request, to come back to after a sign-in or a second factor, with <paramref name="marker"/>.</summary>
    private string ReturnUrl(FreshSignInMarker? marker)
    {
        var kept = RequestParameters().ToList();
        if (marker is not null)
        {
            kept.Add(new(FreshSignInParameter, _freshSignIn.Protect(marker.ToString())));
        }

        return Request.PathBase + Request.Path + QueryString.Create(kept);
    }

    /// <summary>The authorization request's parameters, without this page's own (consent decision, anti-forgery token, marker).</summary>
    private IEnumerable<KeyValuePair<string, string?>> RequestParameters() =>
        (Request.HasFormContentType ? Request.Form.AsEnumerable() : Request.Query.AsEnumerable())
            .Where(p => p.Key is not ("decision" or "__RequestVerificationToken" or FreshSignInParameter))
            .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)));

    /// <summary>A digest of the request's parameters: a marker made for one authorization request is worth nothing on another.</summary>
    private string RequestBinding() => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(System.Security.Cryptography.SHA256.HashData(
        System.Text.Encoding.UTF8.GetBytes(string.Join('&', RequestParameters()
            .OrderBy(p => p.Key, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal)
            .Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value ?? ""))))));

    private ForbidResult Refuse(string error, string description) => Forbid(
        new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }),
        OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
}

/// <summary>
/// "A sign-in was asked for at <see cref="RequestedAt"/>, for the request of digest <see cref="Binding"/>, by the
/// session <see cref="PreviousSessionId"/> (empty: none)": carried, data-protected, by the authorization request the
/// person returns with. A session that signed in since then satisfies prompt=login and max_age for that request
/// (OpenID Connect Core §3.1.2.1) — it is the authentication made during this request.
/// <para>
/// The sign-in time is compared to the millisecond (<see cref="SessionClaims.SignedInAt"/>), not in auth_time's whole
/// seconds, and with no tolerance: a session that signed in before the request, even a second before, does not
/// qualify, so a marker taken to another browser whose session is older (a stolen session cookie) is worth nothing
/// there. Replicas' clocks only need to agree to better than the time a person takes to sign in. The session must also
/// be another one than the one present when the sign-in was asked for.
/// </para>
/// </summary>
public sealed record FreshSignInMarker(DateTimeOffset RequestedAt, string PreviousSessionId, string Binding)
{
    /// <summary>How long a person may take to sign in (second factor and enrolment included).</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(30);

    /// <summary>How far ahead the clock of the replica that made a marker may be: the marker is still valid here.</summary>
    public static readonly TimeSpan ClockTolerance = TimeSpan.FromSeconds(5);

    public bool IsSatisfiedBy(System.Security.Claims.ClaimsPrincipal session) =>
        session.GetSignedInAt() is { } signedInAt && signedInAt >= RequestedAt
        && session.FindFirst(SessionClaims.SessionId)?.Value is { Length: > 0 } sessionId
        && !string.Equals(sessionId, PreviousSessionId, StringComparison.Ordinal);

    public override string ToString() =>
        string.Join(' ', RequestedAt.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture), PreviousSessionId, Binding);

    public static FreshSignInMarker? Parse(string text) =>
        text.Split(' ') is [var at, var previous, var binding]
        && long.TryParse(at, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var milliseconds)
            ? new FreshSignInMarker(DateTimeOffset.FromUnixTimeMilliseconds(milliseconds), previous, binding)
            : null;
}
