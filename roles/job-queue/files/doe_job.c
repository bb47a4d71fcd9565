/* Job wrapper, native build: task spooler runs it once per job, like doe_job.py, with the same job.spec,
 * the same files and the same markers (doe_job.py describes them). doe_queue.py builds it at queue setup
 * when the host has a C compiler; a host without one runs doe_job.py. The point is start-up cost: about
 * 1 ms per job instead of the 13-15 ms a Python interpreter needs before the job can start.
 *
 *     doe_job <job_dir>
 *
 * job.spec: NUL-separated fields: "doe-job-1", timeout in seconds ("" for none), the host's lines of
 * .doe_runtime_info.yaml, the host's members of the done marker, the marker's last members, the main
 * command, then the background commands. The host parts are rendered by doe_queue.py, so no value from
 * a design is ever formatted here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPEC_TAG "doe-job-1"
#define SPEC_FIXED_FIELDS 6
#define KILL_GRACE_SECONDS 5.0

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t timed_out;

static void on_stop(int signum) { (void)signum; stop_requested = 1; }
static void on_alarm(int signum) { (void)signum; timed_out = 1; }
static void on_child(int signum) { (void)signum; }

static void fail(const char *what) {
    fprintf(stderr, "doe_job: %s: %s\n", what, strerror(errno));
    exit(2);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 2026-01-31T12:00:00.123Z, as doe_job.py writes it. */
static void iso(double ts, char *out, size_t size) {
    time_t seconds = (time_t)ts;
    struct tm tm;
    gmtime_r(&seconds, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)((ts - (double)seconds) * 1000));
}

/* Seconds with at most six decimals and no trailing zeros (1.5, 0.001234, 3.0). */
static void seconds_text(double value, char *out, size_t size) {
    snprintf(out, size, "%.6f", value);
    char *end = out + strlen(out) - 1;
    while (end > out && *end == '0' && end[-1] != '.')
        *end-- = '\0';
}

static char *read_file(const char *path, size_t *length) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(path);
    struct stat st;
    if (fstat(fd, &st) != 0)
        fail(path);
    char *data = malloc((size_t)st.st_size + 1);
    if (data == NULL)
        fail("memory");
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, data + done, (size_t)st.st_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail(path);
        done += (size_t)n;
    }
    data[done] = '\0';
    close(fd);
    *length = done;
    return data;
}

static void write_all(int fd, const char *text, const char *path) {
    size_t left = strlen(text);
    while (left > 0) {
        ssize_t n = write(fd, text, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(path);
        text += n;
        left -= (size_t)n;
    }
}

/* Readers see the old file or the new one, never a part; durable: on disk before the rename. */
static void write_atomic(const char *path, const char *text, int durable) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail(tmp);
    write_all(fd, text, tmp);
    if (durable && fsync(fd) != 0)
        fail(tmp);
    close(fd);
    if (rename(tmp, path) != 0)
        fail(path);
}

/* The experiment's journal (two folders up) learns that this job is done, after its marker: one write
 * with O_APPEND, so the lines of jobs that end together never mix. A line that is missing (a full disk)
 * costs only time: the controller checks the jobs that the journal did not report once the queue is idle. */
static void append_journal(const char *job_dir) {
    int fd = open("../../.doe_journal", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    size_t length = strlen(job_dir);
    char *line = malloc(length + 1);
    if (line != NULL) {
        memcpy(line, job_dir, length);
        line[length] = '\n';
        ssize_t written = write(fd, line, length + 1);
        (void)written;
        free(line);
    }
    close(fd);
}

static int open_log(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail(path);
    return fd;
}

/* `sh -c command` in a session of its own (its process group can be signalled as a whole), stdin from
 * /dev/null, with the signal mask and dispositions a job expects. Returns the pid once the child runs the
 * shell (its session exists, so terminating its group cannot miss it), -1 if it could not start. */
static pid_t spawn(const char *command, int out_fd, int err_fd, const sigset_t *job_mask) {
    int started[2];  /* closed by exec in the child: EOF here means the child got that far */
    if (pipe2(started, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(started[0]);
        setsid();
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0 && null_fd != 0) {
            dup2(null_fd, 0);
            close(null_fd);
        }
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGXFSZ, SIG_DFL);
        sigprocmask(SIG_SETMASK, job_mask, NULL);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(started[1]);
    if (pid > 0) {
        char byte;
        while (read(started[0], &byte, 1) < 0 && errno == EINTR)
            ;
    }
    close(started[0]);
    return pid;
}

/* pid's wait status, or -1 if it still runs after `grace` seconds. */
static int reap(pid_t pid, double grace) {
    double deadline = now() + grace;
    for (;;) {
        int status;
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return status;
        if (done < 0 && errno != EINTR)
            return 0;  /* not our child any more: nothing left to wait for */
        if (now() >= deadline)
            return -1;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* SIGTERM the process group of pid, SIGKILL it after the grace period; returns pid's wait status. */
static int terminate_group(pid_t pid, int status, double grace) {
    killpg(pid, SIGTERM);
    if (status < 0) {
        status = reap(pid, grace);
        if (status < 0) {
            killpg(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        }
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: doe_job <job_dir>\n");
        return 2;
    }
    if (chdir(argv[1]) != 0)
        fail(argv[1]);
    size_t spec_length;
    char *spec = read_file("job.spec", &spec_length);
    size_t n_fields = 0;
    for (size_t i = 0; i < spec_length; i++)
        n_fields += spec[i] == '\0';
    n_fields += spec_length > 0 && spec[spec_length - 1] != '\0';
    char **fields = calloc(n_fields + 1, sizeof *fields);
    if (fields == NULL)
        fail("memory");
    for (size_t i = 0, start = 0; i < n_fields; i++) {
        fields[i] = spec + start;
        start += strlen(spec + start) + 1;
    }
    if (n_fields < SPEC_FIXED_FIELDS || strcmp(fields[0], SPEC_TAG) != 0) {
        fprintf(stderr, "doe_job: job.spec in %s is not a %s spec\n", argv[1], SPEC_TAG);
        return 2;
    }
    double timeout = fields[1][0] ? strtod(fields[1], NULL) : 0;
    const char *host_yaml = fields[2], *host_json = fields[3], *tail_json = fields[4];
    const char *main_command = fields[5];

    mkdir("results", 0755);
    mkdir("scratch", 0755);
    int out_fd = open_log("results/stdout.log");
    int err_fd = open_log("results/stderr.log");

    /* The signals that end the wait stay blocked except inside sigsuspend: no wake-up can be missed. */
    sigset_t blocked, job_mask;
    sigemptyset(&blocked);
    int wake_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGCHLD};
    for (size_t i = 0; i < sizeof wake_signals / sizeof *wake_signals; i++)
        sigaddset(&blocked, wake_signals[i]);
    sigprocmask(SIG_BLOCK, &blocked, &job_mask);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigfillset(&action.sa_mask);
    action.sa_handler = on_stop;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    action.sa_handler = on_child;
    sigaction(SIGCHLD, &action, NULL);

    size_t n_background = n_fields - SPEC_FIXED_FIELDS;
    pid_t *background = calloc(n_background + 1, sizeof *background);
    if (background == NULL)
        fail("memory");
    double start = now();
    char start_text[64], end_text[64];
    iso(start, start_text, sizeof start_text);

    int spawn_failed = 0;
    for (size_t i = 0; i < n_background && !spawn_failed; i++) {
        background[i] = spawn(fields[SPEC_FIXED_FIELDS + i], out_fd, err_fd, &job_mask);
        spawn_failed = background[i] < 0;
    }
    pid_t main_pid = spawn_failed ? -1 : spawn(main_command, out_fd, err_fd, &job_mask);
    int main_status = -1;
    if (main_pid < 0) {
        dprintf(err_fd, "doe_job: cannot start the job: %s\n", strerror(errno));
    } else {
        char started[8192];
        int used = snprintf(started, sizeof started, "{\"wrapper_pid\": %ld, \"main_pgid\": %ld, \"background_pgids\": [",
                            (long)getpid(), (long)main_pid);
        for (size_t i = 0; i < n_background && used < (int)sizeof started - 64; i++)
            used += snprintf(started + used, sizeof started - used, "%s%ld", i ? ", " : "", (long)background[i]);
        snprintf(started + used, sizeof started - used, "], \"start_time\": \"%s\"}", start_text);
        write_atomic(".doe_started", started, 0);
        if (timeout > 0) {
            struct itimerval timer = {{0, 0}, {(time_t)timeout, (suseconds_t)((timeout - (time_t)timeout) * 1e6)}};
            if (timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0)
                timer.it_value.tv_usec = 1;
            setitimer(ITIMER_REAL, &timer, NULL);
        }
        for (;;) {
            int status;
            if (waitpid(main_pid, &status, WNOHANG) == main_pid) {
                main_status = status;
                break;
            }
            if (stop_requested || timed_out)
                break;
            sigsuspend(&job_mask);
        }
    }
    /* From here on no signal may interrupt writing the results. */
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGALRM, SIG_IGN);
    int stopped = stop_requested && !timed_out && main_status < 0;
    int was_timed_out = timed_out && main_status < 0;
    if (main_pid > 0)
        /* Also catches what main left behind in its group (e.g. `server &` without wait). */
        main_status = terminate_group(main_pid, main_status, main_status < 0 ? KILL_GRACE_SECONDS : 0);
    for (size_t i = 0; i < n_background; i++)
        if (background[i] > 0)
            terminate_group(background[i], -1, KILL_GRACE_SECONDS);
    double end = now();
    close(out_fd);
    close(err_fd);

    int exit_code;
    if (main_pid < 0)
        exit_code = 127;
    else if (WIFEXITED(main_status))
        exit_code = WEXITSTATUS(main_status);
    else if (WIFSIGNALED(main_status))
        exit_code = 128 + WTERMSIG(main_status);  /* the shell's convention */
    else
        exit_code = 128 + SIGTERM;
    const char *status_text = was_timed_out ? "timeout"
                              : (exit_code == 0 || stopped) ? "finished"  /* a stopped job ended as designed */
                              : "failed";
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    char wall[64];
    seconds_text(end - start, wall, sizeof wall);
    iso(end, end_text, sizeof end_text);
    const char *stopped_text = stopped ? "true" : "false";

    size_t size = strlen(host_yaml) + strlen(host_json) + strlen(tail_json) + 1024;
    char *info = malloc(size), *marker = malloc(size);
    if (info == NULL || marker == NULL)
        fail("memory");
    snprintf(info, size,
             "start_time: \"%s\"\nend_time: \"%s\"\nwall_seconds: %s\nmax_rss_kb: %ld\nexit_code: %d\n"
             "status: \"%s\"\n%sstopped_by_controller: %s\n",
             start_text, end_text, wall, (long)usage.ru_maxrss, exit_code, status_text, host_yaml, stopped_text);
    write_atomic("results/.doe_runtime_info.yaml", info, 1);
    snprintf(marker, size,
             "{\"start_time\": \"%s\", \"end_time\": \"%s\", \"wall_seconds\": %s, \"max_rss_kb\": %ld, "
             "\"exit_code\": %d, \"status\": \"%s\", %s, \"stopped_by_controller\": %s, %s}",
             start_text, end_text, wall, (long)usage.ru_maxrss, exit_code, status_text, host_json, stopped_text,
             tail_json);
    write_atomic(".doe_done", marker, 1);
    append_journal(argv[1]);
    return exit_code;
}
