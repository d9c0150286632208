namespace Identity.BrowserTests.Infrastructure;

/// <summary>Identity's sign-in page, found the way a person finds it: by labels and button names.</summary>
public sealed class LoginPage(IPage page)
{
    public const string Path = "/Account/Login";
    public const string FailureText = "Invalid email or password.";

    public ILocator Email => page.GetByLabel("Email", new() { Exact = true });

    public ILocator Password => page.GetByLabel("Password", new() { Exact = true });

    public ILocator SignInButton => page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true });

    public ILocator Failure => page.GetByText(FailureText, new() { Exact = true });

    public async Task SignInAsync(string email, string password)
    {
        await Email.FillAsync(email);
        await Password.FillAsync(password);
        await SignInButton.ClickAsync();
    }
}

/// <summary>Identity's passkey sign-in button on the login page (shown once the browser supports WebAuthn).</summary>
public sealed class PasskeyLoginPage(IPage page)
{
    public ILocator SignInWithPasskey => page.GetByRole(AriaRole.Button, new() { Name = "Sign in with a passkey", Exact = true });

    public ILocator Failure => page.GetByRole(AriaRole.Alert);
}

/// <summary>Identity's second-factor page: an authenticator code, a recovery code, or a passkey.</summary>
public sealed class SecondFactorPage(IPage page)
{
    public const string Path = "/Account/TwoFactor";

    public const string FailureText = "Invalid code.";

    public ILocator UsePasskey => page.GetByRole(AriaRole.Button, new() { Name = "Use a passkey", Exact = true });

    public ILocator Code => page.GetByLabel("Authenticator code", new() { Exact = true });

    public ILocator Verify => page.GetByRole(AriaRole.Button, new() { Name = "Verify", Exact = true });

    public ILocator RecoveryCode => page.GetByLabel("Or a recovery code", new() { Exact = true });

    public ILocator UseRecoveryCode => page.GetByRole(AriaRole.Button, new() { Name = "Use recovery code", Exact = true });

    public ILocator Failure => page.GetByRole(AriaRole.Alert).Filter(new() { HasText = FailureText });

    public async Task EnterCodeAsync(string code)
    {
        await Code.FillAsync(code);
        await Verify.ClickAsync();
    }

    public async Task EnterRecoveryCodeAsync(string code)
    {
        await RecoveryCode.FillAsync(code);
        await UseRecoveryCode.ClickAsync();
    }
}

/// <summary>Identity's passkey management page.</summary>
public sealed class PasskeysPage(IPage page)
{
    public const string Path = "/Account/Passkeys";

    public ILocator Name => page.GetByLabel("Passkey name", new() { Exact = true });

    public ILocator Add => page.GetByRole(AriaRole.Button, new() { Name = "Add a passkey", Exact = true });

    public ILocator Listed => page.Locator("#passkeys li");

    public ILocator None => page.Locator("#no-passkeys");

    public ILocator Remove(string name) => page.GetByRole(AriaRole.Button, new() { Name = $"Remove {name}", Exact = true });

    public async Task AddAsync(string name)
    {
        await Name.FillAsync(name);
        await Add.ClickAsync();
    }
}

/// <summary>Identity's authenticator-app enrollment page.</summary>
public sealed class TotpPage(IPage page)
{
    public const string Path = "/Account/Totp";

    public ILocator Secret => page.Locator("#totp-secret");

    public ILocator Code => page.GetByLabel("Code from the app", new() { Exact = true });

    public ILocator TurnOn => page.GetByRole(AriaRole.Button, new() { Name = "Turn on", Exact = true });

    public ILocator RecoveryCodes => page.Locator("#recovery-codes li");

    public ILocator Continue => page.GetByRole(AriaRole.Link, new() { Name = "Continue", Exact = true });

    /// <summary>
    /// On this page (signed in): reads the key as a person would type it, turns the app on with the code of the
    /// current time step, and notes the recovery codes shown once.
    /// </summary>
    public async Task<TotpEnrollment> EnrollAsync()
    {
        var enrollment = new TotpEnrollment(await Secret.InnerTextAsync(), DateTime.UtcNow);
        await Code.FillAsync(enrollment.CodeAt(enrollment.EnrolledAt));
        await TurnOn.ClickAsync();
        await Assertions.Expect(RecoveryCodes).ToHaveCountAsync(10);
        return enrollment with { RecoveryCodes = await RecoveryCodes.AllInnerTextsAsync() };
    }
}

/// <summary>An authenticator app as the test holds it: the key read from <see cref="TotpPage"/>, and the recovery codes.</summary>
public sealed record TotpEnrollment(string Secret, DateTime EnrolledAt)
{
    public IReadOnlyList<string> RecoveryCodes { get; init; } = [];

    /// <summary>The 6-digit code of the 30-second step (RFC 6238, SHA-1) at <paramref name="time"/>.</summary>
    public string CodeAt(DateTime time) => new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(Secret)).ComputeTotp(time);

    /// <summary>
    /// A code Identity has not accepted yet: enrolment used up its step (RFC 6238 §5.2), so the next step's code while
    /// still in it (Identity accepts one step ahead), else the current one.
    /// </summary>
    public string NextCode()
    {
        var next = EnrolledAt.AddSeconds(30);
        return CodeAt(next > DateTime.UtcNow ? next : DateTime.UtcNow);
    }
}

/// <summary>Identity's own home page, where a sign-in without a return URL lands.</summary>
public sealed class HomePage(IPage page)
{
    public const string Path = "/";

    public ILocator SignedInAs(string email) => page.GetByText($"You are signed in as {email}.", new() { Exact = true });

    public ILocator Notice => page.GetByRole(AriaRole.Status);
}

/// <summary>Identity's consent page for a third-party client.</summary>
public sealed class ConsentPage(IPage page)
{
    public ILocator Heading(string clientName) => page.GetByRole(AriaRole.Heading, new() { Name = clientName });

    public ILocator Allow => page.GetByRole(AriaRole.Button, new() { Name = "Allow", Exact = true });

    public ILocator Deny => page.GetByRole(AriaRole.Button, new() { Name = "Deny", Exact = true });
}

/// <summary>A page of a regional app (<c>Identity.RegionSample</c>); Identity's end-session confirmation has the same button.</summary>
public sealed class RegionPage(IPage page)
{
    public ILocator Who => page.Locator("#who");

    public ILocator Amr => page.Locator("#amr");

    /// <summary>The <c>email_verified</c> claim of the ID token the app signed in with.</summary>
    public ILocator EmailVerified => page.Locator("#email-verified");

    public ILocator SignOutButton => page.GetByRole(AriaRole.Button, new() { Name = "Sign out", Exact = true });
}

/// <summary>
/// The pages the main frame showed (committed navigations): a redirect that only passes through Identity is not
/// recorded, a sign-in or consent page is.
/// </summary>
public sealed class NavigationLog
{
    private readonly List<Uri> _pages = [];

    public static NavigationLog Attach(IPage page)
    {
        var log = new NavigationLog();
        page.FrameNavigated += (_, frame) =>
        {
            if (frame == page.MainFrame && Uri.TryCreate(frame.Url, UriKind.Absolute, out var url))
            {
                lock (log._pages)
                {
                    log._pages.Add(url);
                }
            }
        };
        return log;
    }

    public void Clear()
    {
        lock (_pages)
        {
            _pages.Clear();
        }
    }

    /// <summary>The paths of the pages shown at <paramref name="origin"/>, in order.</summary>
    public IReadOnlyList<string> PathsAt(Uri origin)
    {
        lock (_pages)
        {
            return _pages.Where(p => Uri.Compare(p, origin, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0)
                .Select(p => p.AbsolutePath)
                .ToList();
        }
    }
}

/// <summary>Identity's change-password page (self-service, and the detour of a sign-in with an expired password).</summary>
public sealed class PasswordPage(IPage page)
{
    public const string Path = "/Account/Password";

    public ILocator Current => page.GetByLabel("Current password", new() { Exact = true });

    public ILocator New => page.GetByLabel("New password", new() { Exact = true });

    public ILocator Confirm => page.GetByLabel("Confirm new password", new() { Exact = true });

    public ILocator Change => page.GetByRole(AriaRole.Button, new() { Name = "Change password", Exact = true });

    public ILocator Expired => page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Your password has expired." });

    public async Task ChangeAsync(string current, string next)
    {
        await Current.FillAsync(current);
        await New.FillAsync(next);
        await Confirm.FillAsync(next);
        await Change.ClickAsync();
    }
}
